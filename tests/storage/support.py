"""Helpers shared by the storage tests."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from storage import InboxItem, Job, JobRequest, Store

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
        work=float(iterations),
    )


def inbox_item(update_id: int, chat_id: int) -> InboxItem:
    """A photo message from the chat's user, as intake records it."""
    return InboxItem(
        update_id=update_id,
        chat_id=chat_id,
        user_id=chat_id,
        first_name="Ann",
        language_code="en",
        message_id=update_id * 10,
        sent_at=START,
        caption=None,
        file_id=f"file-{update_id}",
        file_unique_id=f"unique-{update_id}",
        file_size=1234,
        width=640,
        height=480,
    )
