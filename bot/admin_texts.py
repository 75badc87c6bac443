"""The texts only the bot's admins see (their commands and /stats), in the admin's language."""

from __future__ import annotations

from collections.abc import Sequence

from bot.translation import Text, Translated


class AdminTexts(Translated):
    """The admins' texts in one language: `texts.admin` of everyone's `bot.texts.Texts`."""

    not_admin = Text("Sorry, only the bot's admins can do that.")

    def iterations_now(self, value: int, low: int, high: int) -> str:
        return self._(
            "New pictures use {value} iterations. Change with /iterations N ({low}–{high}).",
            value=value,
            low=low,
            high=high,
        )

    def iterations_set(self, value: int) -> str:
        return self._("Done: new pictures use {value} iterations.", value=value)

    def iterations_bad(self, low: int, high: int) -> str:
        return self._("Usage: /iterations N, with N a whole number from {low} to {high}.", low=low, high=high)

    addstyle_usage = Text(
        "Usage: send a photo with the caption /addstyle NAME, or reply to a photo with /addstyle NAME."
    )
    delstyle_usage = Text("Usage: /delstyle NAME")

    def preset_added(self, name: str) -> str:
        return self._("Style “{name}” added. Everyone can use it with /style {name}.", name=name)

    def preset_exists(self, name: str) -> str:
        return self._(
            "A style called “{name}” already exists. Remove it first with /delstyle {name}.", name=name
        )

    preset_bad_name = Text(
        "That name won't do: use up to 32 letters, digits, _ and - (not starting with -), "
        "e.g. /addstyle starry_night"
    )

    def preset_removed(self, name: str) -> str:
        return self._("Style “{name}” removed.", name=name)

    def stats(
        self, by_status: Sequence[tuple[str, int]], mean: float | None, users_today: int, jobs_today: int
    ) -> str:
        counts = ", ".join(f"{self.state(name)} {count}" for name, count in by_status) or self._("none yet")
        lines = [
            self._("Jobs: {counts}", counts=counts),
            self._("Mean time per job: {time}", time=self.duration(mean) if mean is not None else "–"),
            self._("Today: {jobs} jobs from {users} users", jobs=jobs_today, users=users_today),
        ]
        return "\n".join(lines)

    def disk_space(self, free: int, floor: int) -> str:
        """The free disk space for /stats, and whether new pictures are refused for want of it."""
        if free < floor:
            return self._(
                "Free disk space: {free}, under the {floor} floor: new pictures are refused.",
                free=self.size(free),
                floor=self.size(floor),
            )
        return self._(
            "Free disk space: {free} (new pictures are refused under {floor}).",
            free=self.size(free),
            floor=self.size(floor),
        )

    def painters(self, ready: int, size: int) -> str:
        """/stats: how many of the painting workers are ready."""
        return self.ngettext(
            "{ready} of {count} painter ready",
            "{ready} of {count} painters ready",
            size,
            ready=ready,
        )

    def painter_cannot_start(self, error: str) -> str:
        """/stats: why a painting worker's latest start failed (it is tried again, ever less often)."""
        return self._("A painter cannot start: {error}", error=error)

    def preview_painter(self, ready: bool, error: str | None) -> str:
        """/stats: whether the worker of previews and fast mode is ready, and why not if its start failed."""
        if ready:
            return self._("Preview painter: ready")
        if error is not None:
            return self._("Preview painter cannot start: {error}", error=error)
        return self._("Preview painter: starting")
