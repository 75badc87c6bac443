"""Updates handled concurrently, each chat's in the order they arrived; and a per-user upload limit."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

# The upload limiter forgets users idle for a whole window once it tracks this many.
MAX_TRACKED_USERS = 10_000
# How many updates are handled at once (downloads, replies); each chat still gets its own in order.
MAX_CONCURRENT_UPDATES = 64


class ChatOrderedProcessor(BaseUpdateProcessor):
    """Handle updates of different chats at once, and one chat's updates one after another.

    A slow download in one chat then never delays another chat, while the two photos of an album (or
    a photo and the command that follows it) are still taken in the order the user sent them. Locks
    exist only while a chat has updates in flight.
    """

    def __init__(self, max_concurrent_updates: int = MAX_CONCURRENT_UPDATES) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}  # chat id -> updates holding or waiting for its lock

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        lock = self._locks.setdefault(chat.id, asyncio.Lock())
        self._users[chat.id] = self._users.get(chat.id, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._users[chat.id] -= 1
            if not self._users[chat.id]:
                del self._users[chat.id], self._locks[chat.id]

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""


class UploadLimiter:
    """At most `limit` pictures per user in any `window` seconds: a sliding window kept in memory.

    It guards the downloads and disk of the bot against one user flooding it; the queue's per-user
    limit guards the engine.
    """

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._times: dict[int, deque[float]] = {}

    def allow(self, user_id: int, now: float | None = None) -> bool:
        """Count one upload and say whether it is within the limit (refused uploads don't count)."""
        now = time.monotonic() if now is None else now
        if len(self._times) >= MAX_TRACKED_USERS:
            self._forget_idle(now)
        times = self._times.setdefault(user_id, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.limit:
            return False
        times.append(now)
        return True

    def _forget_idle(self, now: float) -> None:
        """Drop users with no upload in the window, so the table does not grow for ever."""
        for user_id in [u for u, t in self._times.items() if not t or t[-1] <= now - self.window]:
            del self._times[user_id]
