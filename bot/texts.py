"""Every text the bot sends: short, plain, saying what to do next, and in the user's language.

The English texts below are the gettext message ids; bot/locale holds their translations (bot.i18n).
Each text is one whole sentence or more with named placeholders, so a translation can reorder it.
"""

from __future__ import annotations

import gettext

from bot.admin_texts import AdminTexts
from bot.clip_texts import ClipTexts
from bot.translation import Text, Translated
from engine.images import ImageProblem
from engine.workers.jobs import Failure, Outcome

# The bot's commands for the menu (setMyCommands), in the order shown.
COMMAND_NAMES = ("start", "help", "styles", "style", "options", "status", "cancel")


class Texts(Translated):
    """The bot's texts in one language (`bot.i18n.texts_for` gives the one for a user); in `admin` the
    texts only admins see, in `clips` those about animations and videos."""

    def __init__(self, language: str, translations: gettext.NullTranslations) -> None:
        super().__init__(language, translations)
        self.admin = AdminTexts(language, translations)
        self.clips = ClipTexts(language, translations)

    # Help and the command menu.

    def help(self, admin: bool) -> str:
        text = self._(
            "I repaint your photo in the style of another picture.\n\n"
            "1. Send the photo you want painted.\n"
            "2. Send a painting whose style you like — or pick one of mine with /styles.\n\n"
            "Shortcuts: send both as one album, or a photo with the caption /style NAME.\n"
            "/options — size, colours, style strength and brush size\n"
            "/status — your picture's progress · /cancel — stop it"
        )
        text += "\n" + self.clips.in_help
        if admin:
            text += "\n\n" + self._(
                "Admin: /iterations [N] · /addstyle NAME (as a photo caption, or replying to one) · "
                "/delstyle NAME · /stats"
            )
        return text

    def commands(self) -> list[tuple[str, str]]:
        """(command, description) for the menu, in COMMAND_NAMES order."""
        descriptions = {
            "start": self._("What this bot does"),
            "help": self._("How to use it"),
            "styles": self._("Pick a ready-made style"),
            "style": self._("Use a style by name: /style NAME"),
            "options": self._("Size, colours, style strength, brush"),
            "status": self._("Progress of your picture"),
            "cancel": self._("Stop your picture or start over"),
        }
        return [(name, descriptions[name]) for name in COMMAND_NAMES]

    # Taking photos in.

    content_received = Text("Got your photo. Now send a style picture, or pick one with /styles.")

    def style_first(self, name: str) -> str:
        return self._("Style “{name}” chosen. Now send the photo you want painted.", name=name)

    hint = Text("Send me a photo to paint, then a style picture (or /styles). /help explains more.")

    unknown_command = Text("I don't know that command. /help lists what I can do.")
    not_an_image = Text("That file isn't a picture I can use. Please send a JPEG, PNG or WebP image.")
    too_big_to_download = Text(
        "That file is larger than 20 MB, which is more than I can download. Please send a smaller one."
    )
    download_failed = Text("I couldn't fetch that file from Telegram. Please send it again.")
    first_frame = Text("That's an animation; I'll use its first frame.")

    def queue_full(self, count: int) -> str:
        return self.ngettext(
            "You already have {count} picture on the way, the most I take at once. "
            "Send new photos when it is ready (or /cancel it).",
            "You already have {count} pictures on the way, the most I take at once. "
            "Send new photos when one is ready (or /cancel one).",
            count,
        )

    too_many_uploads = Text("That's a lot of pictures at once. Please wait a minute, then send it again.")

    def daily_limit(self, count: int, wait: float) -> str:
        return self.ngettext(
            "You've sent {count} picture in the last 24 hours, the most I take from one person in a day. "
            "You can send the next one in {time}.",
            "You've sent {count} pictures in the last 24 hours, the most I take from one person in a day. "
            "You can send the next one in {time}.",
            count,
            time=self.duration(wait),
        )

    short_of_disk = Text(
        "I'm short of disk space, so I can't take new pictures right now. Please try again later."
    )

    def bad_image(
        self, problem: ImageProblem, width: int | None, height: int | None, limit: float | None
    ) -> str:
        """A refused upload, said to the user who sent it."""
        reason = self.image_problem(problem, "upload", width, height, limit)
        return self._(
            "I can't use that picture: {reason}. Please send another JPEG, PNG or WebP image.", reason=reason
        )

    def private_only(self, username: str | None) -> str:
        if username:
            return self._(
                "I paint in private chats, so photos from different people don't get mixed up: "
                "message @{username}.",
                username=username,
            )
        return self._(
            "I paint in private chats, so photos from different people don't get mixed up: message me."
        )

    # Styles.

    def no_presets(self, admin: bool) -> str:
        text = self._("There are no ready-made styles yet. Send your own style picture instead.")
        if admin:
            text += "\n\n" + self._(
                "To add one, send a picture with the caption /addstyle NAME, or reply to a picture "
                "with /addstyle NAME."
            )
        return text

    presets_header = Text("Pick a style (or send your own picture):")

    style_usage = Text("Usage: /style NAME — see /styles for the names.")

    def unknown_preset(self, name: str) -> str:
        return self._("There's no style called “{name}”. See /styles for the names.", name=name)

    # The queue, progress and results.

    def queued(self, position: int, estimate: float | None) -> str:
        if position <= 1:
            text = self._("Queued — you're next in line.")
        else:
            text = self._("Queued — you're number {position} in the queue.", position=position)
        if estimate is not None:
            text += self.space + self._("Ready in about {time}.", time=self.duration(estimate))
        return text

    def painter_restarting(self, position: int) -> str:
        restarting = self._("The painter is restarting; your picture keeps its place.")
        return self.queued(position, None) + self.space + restarting

    def progress(
        self,
        iteration: int,
        total: int,
        width: int = 12,
        scale: tuple[int, int, int] | None = None,
        frame: tuple[int, int] | None = None,
    ) -> str:
        """The progress bar; `scale` (which, of how many, long side) when a big painting runs coarse to
        fine, `frame` (which, of how many) when a clip is painted."""
        fraction = 0.0 if total <= 0 else min(1.0, iteration / total)
        filled = round(fraction * width)
        bar = "█" * filled + "░" * (width - filled)
        text = self._("Painting… {bar} {percent}%", bar=bar, percent=round(fraction * 100))
        if frame is not None and frame[1] > 0:
            return text + "\n" + self.clips.frame(*frame)
        if scale is None or scale[1] <= 1:
            return text
        index, count, side = scale
        if index == 1:
            stage = self._("Sketching the whole picture at {side} px (step {step} of {steps})")
        else:
            stage = self._("Refining the brushwork at {side} px (step {step} of {steps})")
        return text + "\n" + stage.format(side=side, step=index, steps=count)

    preview = Text("A quick preview — the full painting is on its way.")
    retrying = Text("The painter stopped unexpectedly; your picture is queued again.")
    repainting = Text("Your painting was lost before it reached you; I'm painting it again.")

    def done(self, seconds: float | None, shrunk: tuple[int, int] | None = None) -> str:
        """The result's caption; `shrunk` = (long side painted, long side asked) when memory was short."""
        if seconds is None:
            text = self._("Here it is!")
        else:
            text = self._("Here it is! (painted in {time})", time=self.duration(seconds))
        if shrunk is not None:
            text += self.space + self._(
                "I painted it at {painted} px: {asked} px needs more memory than I have free now.",
                painted=shrunk[0],
                asked=shrunk[1],
            )
        return text

    ready = Text("Your painting is ready ☝️")

    def full_size(self, width: int, height: int) -> str:
        """The caption of the full-size file that follows a result larger than the photos clients show."""
        return self._(
            "Your painting is ready ☝️ Here it is at full size, {width}×{height}, as a file.",
            width=width,
            height=height,
        )

    def delivery_refused(self, reason: str) -> str:
        return self._(
            "Your painting is done, but Telegram refused to take it ({reason}). Please try a smaller size.",
            reason=reason,
        )

    def result_lost(self) -> str:
        return self.failed(self._("the result was lost"))

    def failed(self, reason: str | None) -> str:
        if reason is None:
            return self._(
                "Sorry, I couldn't paint this one because of an unexpected error. Please try again."
            )
        return self._("Sorry, I couldn't paint this one: {reason}. Please try again.", reason=reason)

    def job_failed(self, outcome: Outcome) -> str:
        """Why the engine could not paint a job, from its `Failure` (and image problem)."""
        if outcome.failure == Failure.BAD_IMAGE and outcome.problem is not None:
            reason = self.image_problem(
                outcome.problem, outcome.image or "", outcome.width, outcome.height, outcome.limit
            )
        else:
            reason = self._failure(outcome.failure or Failure.INTERNAL)
        return self.failed(reason)

    def _failure(self, failure: Failure) -> str:
        if failure == Failure.OUT_OF_MEMORY:
            return self._("the picture is too large for my memory (a smaller size in /options will do)")
        if failure == Failure.NO_DISK_SPACE:
            return self._("the server ran out of disk space")
        if failure == Failure.WORKER_DIED:
            return self._("the painter stopped while working on it (it may have run out of memory)")
        if failure == Failure.BAD_CLIP:
            return self.clips.damaged
        if failure == Failure.INVALID_SETTINGS:
            return self._("its settings are invalid")
        return self._("something went wrong while painting it")

    def image_problem(
        self, problem: ImageProblem, image: str, width: int | None, height: int | None, limit: float | None
    ) -> str:
        """What is wrong with an image: `image` is "upload" (the picture just sent), "content",
        "style" or "output" (the painting)."""
        subjects = {
            "upload": self._("it"),
            "content": self._("the photo"),
            "style": self._("the style picture"),
            "output": self._("the painting"),
        }
        limit = limit or 0
        values: dict[str, object] = {
            "subject": subjects.get(image, self._("a picture")),
            "width": width,
            "height": height,
            "megapixels": f"{limit / 1_000_000:g}",
            "side": int(limit),
            "ratio": f"{limit:g}",
        }
        if problem == ImageProblem.MISSING:
            return self._("{subject} is missing", **values)
        if problem in (ImageProblem.UNREADABLE, ImageProblem.NOT_ALLOWED_FORMAT):
            return self._("{subject} is not an image I can read", **values)
        if problem == ImageProblem.DAMAGED:
            return self._("{subject} is damaged or incomplete", **values)
        if problem == ImageProblem.TOO_LARGE:
            return self._("{subject} is too large (over {megapixels} megapixels)", **values)
        if problem == ImageProblem.TOO_SMALL:
            return self._(
                "{subject} is too small ({width}×{height} pixels; at least {side}×{side} needed)", **values
            )
        return self._("{subject} is too long and thin ({width}×{height} pixels; at most {ratio}:1)", **values)

    # /status and /cancel.

    no_job = Text("You have no picture in progress. Send a photo to start.")

    def status(
        self,
        state: str,
        position: int | None,
        estimate: float | None,
        iteration: int,
        total: int,
        waiting_for_telegram: bool = False,
        painter_down: bool = False,
        painters: tuple[int, int] | None = None,
    ) -> str:
        """A job's state for /status; `painters`: (ready, all) of its lane's painters."""
        if state == "queued" and position is not None and painter_down:
            return self.painter_restarting(position)
        if state == "queued" and position is not None:
            text = self.queued(position, estimate)
            if painters is not None and 0 < painters[0] < painters[1]:
                ready, size = painters
                text += self.space + self.ngettext(
                    "{ready} of {count} painter ready.",
                    "{ready} of {count} painters ready.",
                    size,
                    ready=ready,
                )
            return text
        if state == "running":
            return self.progress(iteration, total)
        if state == "done" and waiting_for_telegram:
            return self._(
                "Finished — but Telegram isn't taking pictures right now. I keep trying and it'll arrive."
            )
        if state == "done":
            return self._("Finished — sending it to you now.")
        return self._("Your last picture is {state}.", state=self.state(state))

    cancel_button = Text("Cancel")

    def cancelled(self, count: int = 1, remaining: int = 0) -> str:
        """A job's status once cancelled (the defaults), or the answer to /cancel."""
        if count == 1:
            head = self._("Cancelled.")
        else:
            head = self.ngettext("Cancelled {count} picture.", "Cancelled {count} pictures.", count)
        if not remaining:
            return head
        more = self.ngettext(
            "{count} more picture is still on the way: /cancel again to stop the next.",
            "{count} more pictures are still on the way: /cancel again to stop the next.",
            remaining,
        )
        return head + self.space + more

    nothing_to_cancel = Text("There's nothing to cancel. Send a photo to start.")
    session_cleared = Text("Okay, forgot the photo you sent. Send a new photo to start again.")

    # /options.

    def options(
        self, size: int, max_size: int, preserve_colors: bool, strength: str, brush: str, fast: bool
    ) -> str:
        lines = [
            self._("Output size: {size} px (longest side, at most {max_size})", size=size, max_size=max_size),
            self._("Keep my photo's colours: {on_off}", on_off=self.on_off(preserve_colors)),
            self._("Style strength: {strength}", strength=self.strength(strength)),
            self._(
                "Brush: {brush} (how big the style's strokes are; large suits big pictures)",
                brush=self.brush(brush),
            ),
            self._("Fast mode (the instant preview is the result): {on_off}", on_off=self.on_off(fast)),
        ]
        return (
            "\n".join(lines)
            + "\n\n"
            + self._(
                "Tap to change, or use /options size 512, /options colors on, /options strength strong, "
                "/options brush large, /options fast on."
            )
        )

    def on_off(self, on: bool) -> str:
        return self._("on") if on else self._("off")

    def strength(self, key: str) -> str:
        """A style strength's name (bot.options.STRENGTHS keys)."""
        names = {"weak": self._("weak"), "normal": self._("normal"), "strong": self._("strong")}
        return names.get(key, key)

    def brush(self, key: str) -> str:
        """A brush's name (storage's BRUSHES)."""
        names = {"small": self._("small"), "medium": self._("medium"), "large": self._("large")}
        return names.get(key, key)

    @staticmethod
    def choice(label: str, chosen: bool) -> str:
        """An option button's label, marked when it is the current choice."""
        return f"• {label}" if chosen else label

    def colours_button(self, keep: bool) -> str:
        return self._("Colours: keep") if keep else self._("Colours: from style")

    def brush_button(self, brush: str, chosen: bool) -> str:
        return self.choice(self._("{brush} brush", brush=self.brush(brush)), chosen)

    def fast_button(self, on: bool) -> str:
        return self._("Fast mode: {on_off}", on_off=self.on_off(on))

    options_usage = Text(
        "Usage: /options size N · /options colors on|off · /options strength weak|normal|strong · "
        "/options brush small|medium|large · /options fast on|off"
    )
    fast_unavailable = Text("Fast mode isn't available on this bot right now.")
    something_wrong = Text("Sorry, something went wrong on my side. Please try again.")
