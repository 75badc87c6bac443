"""The texts about animations and videos (bot/animations.py): `texts.clips` of every `bot.texts.Texts`."""

from __future__ import annotations

from bot.translation import Text, Translated
from engine.clips import ClipError, ClipProblem


class ClipTexts(Translated):
    """What the bot says about a clip sent as the content of a painting, in one language."""

    def received(self, seconds: float, frames: int, sound: bool) -> str:
        text = self.ngettext(
            "Got your clip ({seconds} s, {count} frame to paint).",
            "Got your clip ({seconds} s, {count} frames to paint).",
            frames,
            seconds=f"{seconds:.1f}",
        )
        if sound:
            text += self.space + self._("The painting will be silent.")
        return text + self.space + self._("Now send a style picture, or pick one with /styles.")

    def refused(self, exc: ClipError) -> str:
        """Why a clip cannot be painted, naming the limit it broke."""
        if exc.kind == ClipProblem.TOO_LONG and exc.value is not None and exc.limit is not None:
            return self._(
                "That clip is {seconds} s long; I paint clips of up to {limit} s. Please send a shorter one.",
                seconds=f"{exc.value:.1f}",
                limit=f"{exc.limit:g}",
            )
        if exc.kind == ClipProblem.TOO_LARGE and exc.limit is not None:
            return self._(
                "That video is too large: I read videos of up to {limit} px on a side. "
                "Please send a smaller one.",
                limit=int(exc.limit),
            )
        if exc.kind == ClipProblem.TOO_SMALL and exc.limit is not None:
            return self._(
                "That video is too small to paint: it needs at least {limit} px on a side.",
                limit=int(exc.limit),
            )
        if exc.kind == ClipProblem.UNSUPPORTED:
            return self._(
                "I can't read that kind of video. GIFs and MP4 or WebM videos work; please send one of those."
            )
        if exc.kind == ClipProblem.NO_VIDEO:
            return self._("That file has no moving picture in it. Please send a GIF or a video.")
        return self._("I couldn't read that clip; it may be damaged. Please send it again, or another one.")

    def too_long_to_download(self, seconds: int, limit: float) -> str:
        """A clip refused from what Telegram says of it, before it is downloaded."""
        return self._(
            "That clip is {seconds} s long; I paint clips of up to {limit} s. Please send a shorter one.",
            seconds=f"{float(seconds):.1f}",
            limit=f"{limit:g}",
        )

    def fast_instead(self, painted: float) -> str:
        """A clip going in fast mode because painting every frame would take `painted` seconds."""
        return self._(
            "Painting every frame would take about {time} here, so this clip is painted in fast mode.",
            time=self.duration(painted),
        )

    def too_slow(self, painted: float, limit: float) -> str:
        """A clip refused because painting it would hold the painter too long (and there is no fast mode)."""
        return self._(
            "Painting that clip would take about {time} here, longer than I may spend on one clip "
            "({limit}). Please send a shorter clip.",
            time=self.duration(painted),
            limit=self.duration(limit),
        )

    def frame(self, index: int, count: int) -> str:
        return self._("Frame {index} of {count}", index=index, count=count)

    in_help = Text("A GIF or a short video works as the photo too: it comes back painted, without sound.")
    damaged = Text("the clip could not be read past its beginning (it may be damaged)")
