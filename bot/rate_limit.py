"""Telegram's flood limits kept per chat: one chat told to wait never holds up another."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import Callable, Coroutine, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

logger = logging.getLogger(__name__)

# Telegram's limits (core.telegram.org/bots/faq): about 30 messages a second in all, about one a second
# in a private chat, 20 a minute in a group; short bursts pass.
OVERALL_PER_SECOND = 30.0
PRIVATE_PER_SECOND = 1.0
GROUP_PER_SECOND = 20 / 60
# What a chat may get at once before the pace applies: the answers to an album of ten with its commands
# and a job's messages go without waiting, while a sustained flood is held to the chat's pace (and a 429,
# should Telegram count sooner, pauses only that chat).
CHAT_BURST = 20
# Tries after a 429 before the request fails with RetryAfter (each waits out the chat's retry_after).
MAX_RETRIES = 3
# Chats whose limits are remembered before idle ones are forgotten.
MAX_TRACKED_CHATS = 1_000

_droppable: ContextVar[bool] = ContextVar("droppable", default=False)

Result = bool | dict[str, Any] | list[dict[str, Any]]


@contextlib.contextmanager
def droppable() -> Iterator[None]:
    """Requests made inside may be dropped: they go at once or fail with RetryAfter, never wait.

    For updates that the next one replaces (progress). A context variable rather than PTB's
    `rate_limit_args`, so the same call works on a plain `Bot` without a limiter.
    """
    token = _droppable.set(True)
    try:
        yield
    finally:
        _droppable.reset(token)


@dataclass
class _Bucket:
    """A token bucket with a queue: requests take a token each, in the order they came."""

    per_second: float
    burst: float
    tokens: float = 0.0
    stamp: float = 0.0  # loop time the tokens were counted
    paused_until: float = 0.0  # Telegram said to wait until then (429)
    waiting: int = 0  # requests queued or sleeping for a token
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.per_second)
        self.stamp = now

    def take_now(self, now: float) -> bool:
        """A token if one is free now with nobody ahead and no pause; False otherwise (nothing taken)."""
        if self.waiting or now < self.paused_until:
            return False
        self._refill(now)
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    async def take(self) -> None:
        """A token in turn: after the requests before this one, after any pause, when one has refilled."""
        loop = asyncio.get_running_loop()
        self.waiting += 1
        try:
            async with self.lock:
                while True:
                    now = loop.time()
                    if now < self.paused_until:
                        await asyncio.sleep(self.paused_until - now)
                        continue
                    self._refill(now)
                    if self.tokens >= 1:
                        self.tokens -= 1
                        return
                    await asyncio.sleep((1 - self.tokens) / self.per_second)
        finally:
            self.waiting -= 1

    def idle(self, now: float) -> bool:
        """Nothing waits, no pause, and the bucket is full again: forgetting it changes nothing."""
        self._refill(now)
        return not self.waiting and now >= self.paused_until and self.tokens >= self.burst


class ChatRateLimiter(BaseRateLimiter[None]):
    """Requests paced per chat and overall; a 429 pauses only the chat it came for.

    PTB's `AIORateLimiter` pauses every request of the bot on any 429 and has no per-chat limit for
    private chats, while Telegram counts floods per chat. Here each chat has its own bucket and queue:
    a 429 holds that chat's requests for its retry_after and retries the request (at most
    `max_retries` times), while other chats go on. A request made inside `droppable()` is sent only if
    it can go at once, else it fails with RetryAfter without waiting or retrying. The queue of a chat
    is bounded by who sends to it: one update handler at a time per chat (`ChatOrderedProcessor`, whose
    backlog is bounded) and, per job, one delivery and its status edits; nothing here drops a delivery.
    Requests without a chat (getFile, answerCallbackQuery) are not paced and retry on their own.
    """

    def __init__(
        self,
        overall_per_second: float = OVERALL_PER_SECOND,
        private_per_second: float = PRIVATE_PER_SECOND,
        group_per_second: float = GROUP_PER_SECOND,
        burst: int = CHAT_BURST,
        max_retries: int = MAX_RETRIES,
    ) -> None:
        self._overall = _Bucket(overall_per_second, overall_per_second)
        self._private_per_second = private_per_second
        self._group_per_second = group_per_second
        self._burst = burst
        self.max_retries = max_retries
        self._chats: dict[int | str, _Bucket] = {}

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> Result:
        chat_id = data.get("chat_id")
        chat = None if chat_id is None else self._chat(chat_id)
        drop = _droppable.get()
        retries = 0
        while True:
            if chat is not None:
                await self._turn(chat, drop)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                seconds = _seconds(exc)
                if chat is not None:
                    now = asyncio.get_running_loop().time()
                    chat.paused_until = max(chat.paused_until, now + seconds)
                if drop or retries == self.max_retries:
                    logger.info("%s to chat %s: flood limit, given up: %s", endpoint, chat_id, exc)
                    raise
                retries += 1
                logger.info("%s to chat %s: flood limit, next try in %.0f s", endpoint, chat_id, seconds)
                if chat is None:
                    await asyncio.sleep(seconds)  # the chat's pause makes `_turn` wait otherwise

    async def _turn(self, chat: _Bucket, drop: bool) -> None:
        """Wait for the chat's token, then the bot's; a droppable request fails instead of waiting."""
        if not drop:
            await chat.take()
            await self._overall.take()
            return
        now = asyncio.get_running_loop().time()
        if not chat.take_now(now):
            raise RetryAfter(max(1, round(chat.paused_until - now)))
        if not self._overall.take_now(now):
            raise RetryAfter(1)

    def _chat(self, chat_id: object) -> _Bucket:
        key: int | str
        try:
            key = int(chat_id)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            key = str(chat_id)  # a channel's @username
        bucket = self._chats.get(key)
        if bucket is None:
            if len(self._chats) >= MAX_TRACKED_CHATS:
                now = asyncio.get_running_loop().time()
                for idle in [k for k, b in self._chats.items() if b.idle(now)]:
                    del self._chats[idle]
            private = isinstance(key, int) and key > 0
            bucket = _Bucket(self._private_per_second if private else self._group_per_second, self._burst)
            self._chats[key] = bucket
        return bucket


def _seconds(exc: RetryAfter) -> float:
    """RetryAfter's wait in seconds, whether PTB gives an int or (PTB_TIMEDELTA set) a timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)  # about the int form: both are read here
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
