"""Chats handled side by side, each in order, with bounded backlogs."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest
from telegram import Chat, Message, Update

from bot.ordering import ChatOrderedProcessor


def update(update_id: int, chat_id: int) -> Update:
    """A private text message, as much of an update as the processor reads."""
    chat = Chat(chat_id, Chat.PRIVATE)
    message = Message(update_id, datetime.now(UTC), chat, text=f"message {update_id}")
    return Update(update_id, message=message)


class Handlers:
    """Handlers that record the order they start in and run until the test releases them."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.release = asyncio.Event()
        self.changed = asyncio.Event()

    async def held(self, update_id: int) -> None:
        self.started.append(update_id)
        self.changed.set()
        await self.release.wait()

    async def until(self, count: int) -> list[int]:
        """The started updates once there are `count` of them."""
        while len(self.started) < count:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), timeout=5)
        return self.started


async def test_a_chats_backlog_waits_without_holding_the_shared_slots() -> None:
    processor = ChatOrderedProcessor(max_concurrent_updates=4, max_backlog=100)
    handlers = Handlers()
    backlog = [
        asyncio.create_task(processor.process_update(update(n, 1), handlers.held(n))) for n in range(100)
    ]
    other = asyncio.create_task(processor.process_update(update(1000, 2), handlers.held(1000)))
    # With the chat's first update running and 99 waiting, another chat still gets a slot.
    assert await handlers.until(2) == [0, 1000]
    assert processor.current_concurrent_updates == 2
    handlers.release.set()
    await asyncio.gather(*backlog, other)
    assert handlers.started == [0, 1000, *range(1, 100)]  # the chat's own updates in order


async def test_no_more_handlers_run_at_once_than_the_slots() -> None:
    processor = ChatOrderedProcessor(max_concurrent_updates=2)
    handlers = Handlers()
    tasks = [
        asyncio.create_task(processor.process_update(update(n, n), handlers.held(n))) for n in range(1, 6)
    ]
    assert await handlers.until(2) == [1, 2]
    for _ in range(10):  # let every other task run as far as it can
        await asyncio.sleep(0)
    assert handlers.started == [1, 2]
    handlers.release.set()
    await asyncio.gather(*tasks)
    assert sorted(handlers.started) == [1, 2, 3, 4, 5]


async def test_a_chats_updates_beyond_its_backlog_are_dropped_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    processor = ChatOrderedProcessor(max_backlog=3)
    handlers = Handlers()
    with caplog.at_level(logging.WARNING, logger="bot.ordering"):
        tasks = [
            asyncio.create_task(processor.process_update(update(n, 1), handlers.held(n))) for n in range(10)
        ]
        await handlers.until(1)
        done, _ = await asyncio.wait(tasks[4:], timeout=5)  # the dropped ones end at once
        assert len(done) == 6
        assert [r.message for r in caplog.records] == [
            "chat 1: 3 updates waiting; dropping its new ones until it catches up"
        ]
        handlers.release.set()
        await asyncio.gather(*tasks)
    assert handlers.started == [0, 1, 2, 3]
    assert caplog.records[-1].message == "chat 1: caught up; 6 updates were dropped"
    # Once the chat has caught up it starts afresh.
    await processor.process_update(update(20, 1), handlers.held(20))
    assert handlers.started[-1] == 20
