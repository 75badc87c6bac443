"""The test-side API that inspects what the bot did."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from tests.bot.fake_telegram.protocol import JSON, ApiCall, BotMessage, commands_key, short_params
from tests.bot.fake_telegram.state import State
from tests.timing import scaled

T = TypeVar("T")


class Inspection(State):
    """What the bot sent and called, and waiting for it."""

    def messages(self, chat_id: int, *, include_deleted: bool = False) -> list[BotMessage]:
        """The bot's messages in a chat as they are now (oldest first), each with its edit history."""
        with self._lock:
            return [
                replace(m, history=list(m.history))
                for (chat, _), m in sorted(self._outbox.items())
                if chat == chat_id and (include_deleted or not m.deleted)
            ]

    def chat_history(self, chat_id: int) -> list[JSON]:
        """Every live message in a chat, the users' and the bot's, oldest first, as Telegram JSON."""
        with self._lock:
            return [copy.deepcopy(m) for (chat, _), m in sorted(self._messages.items()) if chat == chat_id]

    def calls(self, method: str | None = None, **params: object) -> list[ApiCall]:
        """Logged requests, optionally of one method and with parameters equal (as strings) to `params`."""
        with self._lock:
            return [
                copy.copy(c)
                for c in self._calls
                if (method is None or c.method.lower() == method.lower())
                and all(str(c.params.get(k)) == str(v) for k, v in params.items())
            ]

    def pending_updates(self) -> list[JSON]:
        """Updates not yet confirmed by a getUpdates offset."""
        with self._lock:
            return copy.deepcopy(self._updates)

    def callback_answer(self, callback_query_id: str) -> JSON | None:
        """How the bot answered a callback query (text, show_alert), or None if not yet."""
        with self._lock:
            return self._queries.get(callback_query_id)

    def commands(self, scope: JSON | None = None, language_code: str = "") -> list[JSON]:
        """The command list published with setMyCommands for this scope and language."""
        with self._lock:
            return list(self._commands.get(commands_key(scope, language_code), []))

    def file_bytes(self, file_id: str) -> bytes:
        with self._lock:
            return self._files[file_id].data

    async def wait_for(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline over many polls
        interval: float = 0.02,
    ) -> T:
        """Poll `predicate` until it returns something truthy and return that; fail with the recent calls.

        The deadline stretches with the machine (`tests.timing.scaled`): what the bot does in between
        waits on the CPU as much as on this server.
        """
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"condition not met within {timeout} s; recent calls:\n{self.dump_calls()}"
                )
            await asyncio.sleep(interval)

    async def wait_for_message(
        self,
        chat_id: int,
        predicate: Callable[[BotMessage], object] = bool,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> BotMessage:
        """The newest bot message in the chat that satisfies `predicate`, once there is one."""
        return await self.wait_for(
            lambda: next((m for m in reversed(self.messages(chat_id)) if predicate(m)), None), timeout
        )

    def dump_calls(self, last: int = 25) -> str:
        """The last calls other than getUpdates, one a line."""
        calls = [c for c in self.calls() if c.method.lower() != "getupdates"][-last:]
        return (
            "\n".join(
                f"  {c.time:.3f} {c.method} {c.status} {c.description} {short_params(c.params)}"
                for c in calls
            )
            or "  (none)"
        )
