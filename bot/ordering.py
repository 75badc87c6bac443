"""Updates handled concurrently, each chat's in the order they arrived."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

logger = logging.getLogger(__name__)

# How many updates are handled at once (downloads, replies); each chat still gets its own in order.
MAX_CONCURRENT_UPDATES = 64
# Updates of one chat that may wait behind the one being handled; newer ones are dropped. Replies to a
# chat go at Telegram's pace of about one message a second, so this is half a minute of answers: room
# for an album of ten with its commands, while a forwarded backlog or a script cannot queue without
# bound (and a stop, which waits for every update already fetched, stays short).
MAX_CHAT_BACKLOG = 30


class ChatOrderedProcessor(BaseUpdateProcessor):
    """Handle updates of different chats at once, and one chat's updates one after another.

    A slow download in one chat then never delays another chat, while the two photos of an album (or
    a photo and the command that follows it) are still taken in the order the user sent them. An
    update takes one of the shared slots only once its chat's turn has come, so a chat's backlog waits
    on its own lock and never holds the slots other chats need; a chat with `max_backlog` updates
    waiting gets its newer ones dropped. Locks exist only while a chat has updates in flight.

    PTB marks `process_update` final because it takes the slot before `do_process_update`; here the
    slot must be taken after the chat's lock, so it is overridden (it runs the same semaphore).
    """

    def __init__(
        self, max_concurrent_updates: int = MAX_CONCURRENT_UPDATES, max_backlog: int = MAX_CHAT_BACKLOG
    ) -> None:
        super().__init__(max_concurrent_updates)
        self.max_backlog = max_backlog
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}  # chat id -> updates holding or waiting for its lock
        self._dropped: dict[int, int] = {}  # chat id -> updates dropped since its backlog was last empty

    async def process_update(self, update: object, coroutine: Awaitable[Any]) -> None:  # type: ignore[misc]
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            async with self._semaphore:
                await self.do_process_update(update, coroutine)
            return
        in_flight = self._users.get(chat.id, 0)
        if in_flight > self.max_backlog:
            self._drop(chat.id, coroutine)
            return
        lock = self._locks.setdefault(chat.id, asyncio.Lock())
        self._users[chat.id] = in_flight + 1
        try:
            async with lock, self._semaphore:
                await self.do_process_update(update, coroutine)
        finally:
            self._users[chat.id] -= 1
            if not self._users[chat.id]:
                del self._users[chat.id], self._locks[chat.id]
                dropped = self._dropped.pop(chat.id, 0)
                if dropped:
                    logger.warning("chat %d: caught up; %d updates were dropped", chat.id, dropped)

    def _drop(self, chat_id: int, coroutine: Awaitable[Any]) -> None:
        """Drop an update of a chat whose backlog is full, saying so once per backlog."""
        if chat_id not in self._dropped:
            logger.warning(
                "chat %d: %d updates waiting; dropping its new ones until it catches up",
                chat_id,
                self.max_backlog,
            )
        self._dropped[chat_id] = self._dropped.get(chat_id, 0) + 1
        if asyncio.iscoroutine(coroutine):
            coroutine.close()  # never started: closing it spares the "never awaited" warning

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run the handlers: the ordering and the slot are taken by `process_update`."""
        await coroutine

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""
