"""The inbox keeps picture messages whose handling a crash cut short, for a bounded number of retries."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from storage import Store
from storage.inbox import MAX_INBOX_ATTEMPTS
from tests.storage.support import inbox_item


async def test_unfinished_messages_survive_a_restart_field_by_field(tmp_path: Path) -> None:
    document = replace(inbox_item(12, 6), width=None, height=None, mime_type="image/png", caption="/style x")
    clip = replace(inbox_item(14, 7), media="video_note", duration=9, mime_type="video/mp4")
    async with Store.open(tmp_path) as store:
        await store.inbox.add(inbox_item(11, 5))
        await store.inbox.add(document)
        await store.inbox.add(clip)
        await store.inbox.add(inbox_item(13, 6))
        await store.inbox.add(inbox_item(11, 5))  # added again while handled again: no duplicate
        await store.inbox.done(13)
    async with Store.open(tmp_path) as store:
        assert await store.inbox.take_unfinished() == [
            replace(inbox_item(11, 5), attempts=1),
            replace(document, attempts=1),
            replace(clip, attempts=1),
        ]


async def test_a_message_that_keeps_crashing_is_dropped(tmp_path: Path) -> None:
    async with Store.open(tmp_path) as store:
        await store.inbox.add(inbox_item(7, 1))
        attempts = [[item.attempts for item in await store.inbox.take_unfinished()] for _ in range(4)]
    assert attempts == [[1], [2], [3], []]
    assert MAX_INBOX_ATTEMPTS == 3
