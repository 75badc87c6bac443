"""Network trouble on demand: injected faults, blocked chats."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from aiohttp import web

from tests.bot.fake_telegram.protocol import JSON, ApiCall, ApiError, Fault, error_response
from tests.bot.fake_telegram.state import State


class Network(State):
    """Faults the test injects and how a request is answered under them."""

    def _record(self, method: str, params: JSON, encoding: str) -> ApiCall:
        call = ApiCall(method, params, time.monotonic(), encoding)
        with self._lock:
            self._calls.append(call)
        return call

    def _fail(self, call: ApiCall, error: ApiError) -> web.Response:
        call.status, call.description = error.status, error.description
        return error_response(error)

    def _take_fault(self, method: str, params: JSON) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == method and all(
                    str(params.get(k)) == str(v) for k, v in fault.match.items()
                ):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    async def _with_faults(
        self,
        request: web.Request,
        call: ApiCall,
        method: str,
        answer: Callable[[], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """Answer normally, or as the next matching injected fault says."""
        fault = self._take_fault(method, call.params)
        if fault is None:
            return await answer()
        if isinstance(fault.kind, int):
            parameters = {"retry_after": fault.retry_after} if fault.kind == 429 else None
            description = fault.description
            if fault.kind == 429 and description is None:
                description = f"Too Many Requests: retry after {fault.retry_after}"
            return self._fail(call, ApiError(fault.kind, description, parameters))
        call.status, call.description = 0, f"injected {fault.kind}"
        if fault.kind == "timeout" and fault.then_apply:
            # Telegram still carries out a request whose client gave up: shield it from the disconnect.
            task = asyncio.create_task(self._after_hold(fault.hold, answer))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return await asyncio.shield(task)
        if fault.kind == "timeout":
            await self._hold(fault.hold)
        if request.transport is not None:
            request.transport.abort()
        return web.Response()

    async def _hold(self, seconds: float) -> None:
        assert self._closed is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), seconds)

    async def _after_hold(
        self, seconds: float, answer: Callable[[], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        await self._hold(seconds)
        return await answer()

    def fail_next(
        self,
        method: str,
        kind: int | Literal["timeout", "drop"],
        count: int = 1,
        *,
        retry_after: int = 1,
        hold: float | None = None,
        then_apply: bool = False,
        description: str | None = None,
        **match: object,
    ) -> None:
        """Make the next `count` calls of `method` (or "download") whose params equal `match` fail.

        `kind`: an HTTP status answered with Telegram's description (429 carries `retry_after`; 403 is
        "bot was blocked by the user"); "timeout" holds the request `hold` seconds (default `hold_seconds`)
        then drops it, or processes it if `then_apply`; "drop" closes the connection without a response.
        """
        with self._lock:
            self._faults.append(
                Fault(
                    method.lower(),
                    kind,
                    count,
                    dict(match),
                    retry_after,
                    self.hold_seconds if hold is None else hold,
                    then_apply,
                    description,
                )
            )

    def block(self, chat_id: int, blocked: bool = True) -> None:
        """The user blocks (or unblocks) the bot: every call for the chat gets 403."""
        with self._lock:
            if blocked:
                self._blocked.add(chat_id)
            else:
                self._blocked.discard(chat_id)
