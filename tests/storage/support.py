"""Helpers shared by the storage tests."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from storage import Job, JobRequest, Store

START = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC: a day boundary is 54 400 s back

REQUEST = JobRequest(iterations=100, max_size=512, preserve_colors=True, style_strength=1.5)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def submit(store: Store, user_id: int = 1, iterations: int = 100, chat_id: int | None = None) -> Job:
    """Queue `REQUEST` with these iterations, with made-up input paths."""
    return await store.jobs.submit(
        chat_id=user_id if chat_id is None else chat_id,
        user_id=user_id,
        content_path=Path("/data/uploads/content.jpg"),
        style_paths=[Path("/data/uploads/style.jpg")],
        request=replace(REQUEST, iterations=iterations),
    )
