"""The inbox keeps updates whose handling a crash cut short, for a bounded number of retries."""

from __future__ import annotations

from pathlib import Path

from storage import InboxItem, Store
from storage.inbox import MAX_INBOX_ATTEMPTS


async def test_unfinished_updates_survive_a_restart(tmp_path: Path) -> None:
    async with Store.open(tmp_path) as store:
        await store.inbox.add(11, 5, '{"update_id": 11}')
        await store.inbox.add(12, 6, '{"update_id": 12}')
        await store.inbox.add(11, 5, '{"update_id": 11}')  # added again while handled again: no duplicate
        await store.inbox.done(12)
    async with Store.open(tmp_path) as store:
        assert await store.inbox.take_unfinished() == [InboxItem(11, 5, '{"update_id": 11}', 1)]


async def test_an_update_that_keeps_crashing_is_dropped(tmp_path: Path) -> None:
    async with Store.open(tmp_path) as store:
        await store.inbox.add(7, 1, "{}")
        attempts = [[item.attempts for item in await store.inbox.take_unfinished()] for _ in range(4)]
    assert attempts == [[1], [2], [3], []]
    assert MAX_INBOX_ATTEMPTS == 3
