"""Network trouble on demand: injected faults, outages, slow downloads, blocked chats."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Literal

from aiohttp import web

from tests.bot.fake_telegram.protocol import (
    JSON,
    ApiCall,
    ApiError,
    Fault,
    FloodLimit,
    error_response,
    gateway_error,
)
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
        """Answer normally, or as an outage or the next matching injected fault says."""
        outage = self._outage(method)
        if outage is not None:
            return self._outage_answer(request, call, *outage)
        flooded = self._flooded(call.params)
        if flooded is not None:
            error = ApiError(429, f"Too Many Requests: retry after {flooded}", {"retry_after": flooded})
            return self._fail(call, error)
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

    def _flooded(self, params: JSON) -> int | None:
        """The seconds to wait if the chat's flood control refuses this call, else None (it counts)."""
        with self._lock:
            try:
                limit = self._floods.get(int(params.get("chat_id", "")))
            except (TypeError, ValueError):
                return None
            if limit is None:
                return None
            now = time.monotonic()
            if now < limit.until:
                limit.refused += 1
                return max(1, math.ceil(limit.until - now))
            limit.tokens = min(limit.burst, limit.tokens + (now - limit.stamp) * limit.per_second)
            limit.stamp = now
            if limit.tokens >= 1:
                limit.tokens -= 1
                return None
            limit.until = now + limit.retry_after
            limit.refused += 1
            return limit.retry_after

    def _outage(self, method: str) -> tuple[float, int | Literal["drop"]] | None:
        with self._lock:
            for name in (method, "*"):
                until, status = self._outages.get(name, (0.0, 502))
                if until > time.monotonic():
                    return until, status
        return None

    def _outage_answer(
        self, request: web.Request, call: ApiCall, until: float, status: int | Literal["drop"]
    ) -> web.Response:
        call.description = "outage"
        if status == "drop":
            call.status = 0
            if request.transport is not None:
                request.transport.abort()
            return web.Response()
        call.status = status
        if status in (502, 503, 504):
            return gateway_error(status)
        if status == 429:
            retry_after = max(1, math.ceil(until - time.monotonic()))
            error = ApiError(
                429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
            )
            return error_response(error)
        return error_response(ApiError(status))

    async def _stream_slowly(
        self, request: web.Request, call: ApiCall, data: bytes, rate: float
    ) -> web.StreamResponse:
        """Send `data` in chunks, ten a second, at `rate` bytes a second (other requests go on meanwhile)."""
        call.status, call.description = 200, f"throttled to {rate:g} B/s"
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = max(1, int(rate / 10))
        for start in range(0, len(data), chunk):
            await response.write(data[start : start + chunk])
            await self._hold(chunk / rate)
            if self._closing:
                if request.transport is not None:
                    request.transport.abort()
                return response
        await response.write_eof()
        return response

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

    def flood_limit(
        self, chat_id: int, per_second: float | None = 1.0, *, burst: int = 1, retry_after: int = 3
    ) -> None:
        """Flood control for one chat, as Telegram's: calls carrying its chat_id beyond `per_second`
        (after a burst of `burst`) answer 429 with `retry_after`, and so does every call for the chat
        until that time has passed (with the seconds left). Other chats are not affected. None lifts it.
        """
        with self._lock:
            if per_second is None:
                self._floods.pop(chat_id, None)
            else:
                self._floods[chat_id] = FloodLimit(
                    per_second, burst, retry_after, tokens=burst, stamp=time.monotonic()
                )

    def flood_refusals(self, chat_id: int) -> int:
        """How many calls for the chat its flood control has answered 429."""
        with self._lock:
            limit = self._floods.get(chat_id)
            return 0 if limit is None else limit.refused

    def outage(
        self, methods: str | Iterable[str], seconds: float, status: int | Literal["drop"] = 502
    ) -> None:
        """For `seconds`, every call of `methods` answers `status` (or has its connection dropped).

        Names are lower-case ("sendmessage"), "download" for file downloads, "*" for every route. 502, 503
        and 504 come as the HTML page of Telegram's front server, 429 with the seconds left as retry_after,
        other statuses as Bot API errors. Calls are still logged (description "outage"); injected faults
        wait until the outage is over.
        """
        names = [methods] if isinstance(methods, str) else list(methods)
        with self._lock:
            for name in names:
                self._outages[name.lower()] = (time.monotonic() + seconds, status)

    def end_outage(self, methods: str | Iterable[str] | None = None) -> None:
        """End the outage of `methods` (all of them if None) now."""
        with self._lock:
            if methods is None:
                self._outages.clear()
            for name in [methods] if isinstance(methods, str) else list(methods or []):
                self._outages.pop(name.lower(), None)

    def throttle_downloads(self, bytes_per_second: float | None, file_id: str | None = None) -> None:
        """Stream downloads of `file_id` (of every file if None) at this rate; None ends the throttling.

        A file's own rate wins over the one for every file.
        """
        with self._lock:
            if bytes_per_second is None:
                self._download_rates.pop(file_id, None)
            else:
                self._download_rates[file_id] = bytes_per_second
