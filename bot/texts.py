"""Every text the bot sends: short, plain, and saying what to do next."""

from __future__ import annotations

from collections.abc import Sequence

from engine.images import ImageProblem
from engine.workers.jobs import Failure, Outcome

HELP = (
    "I repaint your photo in the style of another picture.\n\n"
    "1. Send the photo you want painted.\n"
    "2. Send a painting whose style you like — or pick one of mine with /styles.\n\n"
    "Shortcuts: send both as one album, or a photo with the caption /style NAME.\n"
    "/options — size, colours, style strength and brush size\n"
    "/status — your picture's progress · /cancel — stop it"
)

ADMIN_HELP = (
    "\n\nAdmin: /iterations [N] · /addstyle NAME (as a photo caption, or replying to one) · "
    "/delstyle NAME · /stats"
)

COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", "What this bot does"),
    ("help", "How to use it"),
    ("styles", "Pick a ready-made style"),
    ("style", "Use a style by name: /style NAME"),
    ("options", "Size, colours, style strength, brush"),
    ("status", "Progress of your picture"),
    ("cancel", "Stop your picture or start over"),
)

CONTENT_RECEIVED = "Got your photo. Now send a style picture, or pick one with /styles."
STYLE_FIRST = "Style “{name}” chosen. Now send the photo you want painted."
HINT = "Send me a photo to paint, then a style picture (or /styles). /help explains more."
UNKNOWN_COMMAND = "I don't know that command. /help lists what I can do."
NOT_AN_IMAGE = "That file isn't a picture I can use. Please send a JPEG, PNG or WebP image."
TOO_BIG_TO_DOWNLOAD = (
    "That file is larger than 20 MB, which is more than I can download. Please send a smaller one."
)
NOT_ADMIN = "Sorry, only the bot's admins can do that."
NO_PRESETS = "There are no ready-made styles yet. Send your own style picture instead."
PRESETS_HEADER = "Pick a style (or send your own picture):"
STYLE_USAGE = "Usage: /style NAME — see /styles for the names."
ADDSTYLE_USAGE = (
    "Usage: send a photo with the caption /addstyle NAME, or reply to a photo with /addstyle NAME."
)
DELSTYLE_USAGE = "Usage: /delstyle NAME"
NOTHING_TO_CANCEL = "There's nothing to cancel. Send a photo to start."
SESSION_CLEARED = "Okay, forgot the photo you sent. Send a new photo to start again."
NO_JOB = "You have no picture in progress. Send a photo to start."
QUEUE_FULL = (
    "You already have {count} pictures on the way, the most I take at once. "
    "Send new photos when one is ready (or /cancel one)."
)
TOO_MANY_UPLOADS = "That's a lot of pictures at once. Please wait a minute, then send it again."
CANCELLED = "Cancelled."
READY = "Your painting is ready ☝️"
DOWNLOAD_FAILED = "I couldn't fetch that file from Telegram. Please send it again."
SOMETHING_WRONG = "Sorry, something went wrong on my side. Please try again."
FIRST_FRAME = "That's an animation; I'll use its first frame."
PREVIEW = "A quick preview — the full painting is on its way."
FAST_UNAVAILABLE = "Fast mode isn't available on this bot right now."
CANCEL_BUTTON = "Cancel"
RETRYING = "The painter stopped unexpectedly; your picture is queued again."


def unknown_preset(name: str) -> str:
    return f"There's no style called “{name}”. See /styles for the names."


def bad_image(problem: ImageProblem, width: int | None, height: int | None, limit: float | None) -> str:
    """A refused upload, said to the user who sent it."""
    reason = image_problem(problem, "it", width, height, limit)
    return f"I can't use that picture: {reason}. Please send another JPEG, PNG or WebP image."


# What the engine refuses an image for, said of `subject` ("it", "the photo", "the style picture").
_IMAGE_PROBLEMS = {
    ImageProblem.MISSING: "{subject} is missing",
    ImageProblem.UNREADABLE: "{subject} is not an image I can read",
    ImageProblem.NOT_ALLOWED_FORMAT: "{subject} is not an image I can read",
    ImageProblem.DAMAGED: "{subject} is damaged or incomplete",
    ImageProblem.TOO_LARGE: "{subject} is too large (over {megapixels} megapixels)",
    ImageProblem.TOO_SMALL: "{subject} is too small ({width}×{height} pixels; at least {side}×{side} needed)",
    ImageProblem.TOO_THIN: "{subject} is too long and thin ({width}×{height} pixels; at most {ratio}:1)",
}
_IMAGE_SUBJECTS = {"content": "the photo", "style": "the style picture", "output": "the painting"}
_FAILURES = {
    Failure.OUT_OF_MEMORY: "the picture is too large for my memory (a smaller size in /options will do)",
    Failure.NO_DISK_SPACE: "the server ran out of disk space",
    Failure.WORKER_DIED: "the painter stopped while working on it (it may have run out of memory)",
    Failure.INVALID_SETTINGS: "its settings are invalid",
    Failure.INTERNAL: "something went wrong while painting it",
}


def image_problem(
    problem: ImageProblem, subject: str, width: int | None, height: int | None, limit: float | None
) -> str:
    limit = limit or 0
    return _IMAGE_PROBLEMS[problem].format(
        subject=subject,
        width=width,
        height=height,
        megapixels=f"{limit / 1_000_000:g}",
        side=int(limit),
        ratio=f"{limit:g}",
    )


def job_failed(outcome: Outcome) -> str:
    """Why the engine could not paint a job, from its `Failure` (and image problem)."""
    if outcome.failure == Failure.BAD_IMAGE and outcome.problem is not None:
        subject = _IMAGE_SUBJECTS.get(outcome.image or "", "a picture")
        reason = image_problem(outcome.problem, subject, outcome.width, outcome.height, outcome.limit)
    else:
        reason = _FAILURES.get(outcome.failure or Failure.INTERNAL, _FAILURES[Failure.INTERNAL])
    return failed(reason)


def cancelled(count: int, remaining: int) -> str:
    head = "Cancelled." if count == 1 else f"Cancelled {count} pictures."
    if remaining:
        more = "picture is" if remaining == 1 else "pictures are"
        return f"{head} {remaining} more {more} still on the way: /cancel again to stop the next."
    return head


def private_only(username: str | None) -> str:
    where = f"@{username}" if username else "me"
    return f"I paint in private chats, so photos from different people don't get mixed up: message {where}."


def delivery_refused(reason: str) -> str:
    return f"Your painting is done, but Telegram refused to take it ({reason}). Please try a smaller size."


def queued(position: int, estimate: float | None) -> str:
    where = "next in line" if position <= 1 else f"number {position} in the queue"
    eta = f" Ready in about {duration(estimate)}." if estimate is not None else ""
    return f"Queued — you're {where}.{eta}"


def progress(iteration: int, total: int, width: int = 12, scale: tuple[int, int, int] | None = None) -> str:
    """The progress bar; `scale` (which, of how many, long side) when a big painting runs coarse to fine."""
    fraction = 0.0 if total <= 0 else min(1.0, iteration / total)
    filled = round(fraction * width)
    bar = "█" * filled + "░" * (width - filled)
    text = f"Painting… {bar} {fraction:.0%}"
    if scale is None or scale[1] <= 1:
        return text
    index, count, side = scale
    stage = "Sketching the whole picture" if index == 1 else "Refining the brushwork"
    return f"{text}\n{stage} at {side} px (step {index} of {count})"


def done(seconds: float | None, shrunk: tuple[int, int] | None = None) -> str:
    """The result's caption; `shrunk` = (long side painted, long side asked) when memory was short."""
    text = "Here it is!" if seconds is None else f"Here it is! (painted in {duration(seconds)})"
    if shrunk is not None:
        text += f" I painted it at {shrunk[0]} px: {shrunk[1]} px needs more memory than I have free now."
    return text


def failed(reason: str | None) -> str:
    return f"Sorry, I couldn't paint this one: {reason or 'an unexpected error'}. Please try again."


def status(
    state: str,
    position: int | None,
    estimate: float | None,
    iteration: int,
    total: int,
    waiting_for_telegram: bool = False,
    painter_down: bool = False,
) -> str:
    if state == "queued" and position is not None and painter_down:
        return f"{queued(position, None)} The painter is restarting; your picture keeps its place."
    if state == "queued" and position is not None:
        return queued(position, estimate)
    if state == "running":
        return progress(iteration, total)
    if state == "done" and waiting_for_telegram:
        return "Finished — but Telegram isn't taking pictures right now. I keep trying and it'll arrive."
    if state == "done":
        return "Finished — sending it to you now."
    return f"Your last picture is {state}."


def options(size: int, max_size: int, preserve_colors: bool, strength: str, brush: str, fast: bool) -> str:
    return (
        f"Output size: {size} px (longest side, at most {max_size})\n"
        f"Keep my photo's colours: {'on' if preserve_colors else 'off'}\n"
        f"Style strength: {strength}\n"
        f"Brush: {brush} (how big the style's strokes are; large suits big pictures)\n"
        f"Fast mode (the instant preview is the result): {'on' if fast else 'off'}\n\n"
        "Tap to change, or use /options size 512, /options colors on, /options strength strong, "
        "/options brush large, /options fast on."
    )


def choice(label: str, chosen: bool) -> str:
    """An option button's label, marked when it is the current choice."""
    return f"• {label}" if chosen else label


def colours_button(keep: bool) -> str:
    return f"Colours: {'keep' if keep else 'from style'}"


def brush_button(brush: str, chosen: bool) -> str:
    return choice(f"{brush} brush", chosen)


def fast_button(on: bool) -> str:
    return f"Fast mode: {'on' if on else 'off'}"


OPTIONS_USAGE = (
    "Usage: /options size N · /options colors on|off · /options strength weak|normal|strong · "
    "/options brush small|medium|large · /options fast on|off"
)


def iterations_now(value: int, low: int, high: int) -> str:
    return f"New pictures use {value} iterations. Change with /iterations N ({low}–{high})."


def iterations_set(value: int) -> str:
    return f"Done: new pictures use {value} iterations."


def iterations_bad(low: int, high: int) -> str:
    return f"Usage: /iterations N, with N a whole number from {low} to {high}."


def preset_added(name: str) -> str:
    return f"Style “{name}” added. Everyone can use it with /style {name}."


def preset_exists(name: str) -> str:
    return f"A style called “{name}” already exists. Remove it first with /delstyle {name}."


PRESET_BAD_NAME = (
    "That name won't do: use up to 32 letters, digits, _ and - (not starting with -), "
    "e.g. /addstyle starry_night"
)


def preset_removed(name: str) -> str:
    return f"Style “{name}” removed."


def stats(by_status: Sequence[tuple[str, int]], mean: float | None, users_today: int, jobs_today: int) -> str:
    counts = ", ".join(f"{name} {count}" for name, count in by_status) or "none yet"
    mean_text = duration(mean) if mean is not None else "n/a"
    return (
        f"Jobs: {counts}\nMean time per job: {mean_text}\nToday: {jobs_today} jobs from {users_today} users"
    )


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def full_size(width: int, height: int) -> str:
    """The caption of the full-size file that follows a result larger than the photos clients show."""
    return f"{READY} Here it is at full size, {width}×{height}, as a file."
