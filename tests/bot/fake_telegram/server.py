"""The HTTP server: routes, long polling and the lifecycle, over the state and behaviour of the mixins."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web
from telegram.ext import ApplicationBuilder

from tests.bot.fake_telegram.inspection import Inspection
from tests.bot.fake_telegram.methods import Methods
from tests.bot.fake_telegram.network import Network
from tests.bot.fake_telegram.protocol import (
    DEFAULT_TOKEN,
    JSON,
    UPLOAD_LIMIT,
    ApiError,
    check_markup,
    error_response,
    int_param,
    read_params,
)
from tests.bot.fake_telegram.users import Users
from tests.bot.fake_telegram.webhook import WEBHOOK_CONFLICT, Webhook


class FakeTelegram(Methods, Users, Network, Inspection, Webhook):
    """The fake Bot API server and the test-side API (act as users, inspect the bot's calls, inject faults).

    State is guarded by a lock so a test may drive a server running in another thread (`run_in_thread`).
    """

    def __init__(self, token: str = DEFAULT_TOKEN, *, hold_seconds: float = 10.0) -> None:
        super().__init__(token, hold_seconds)
        self._methods: dict[str, Callable[[JSON], Any]] = {
            name.lower(): handler
            for name, handler in {
                "getMe": lambda p: self.bot_user | {"can_read_all_group_messages": not self.privacy_mode},
                "setWebhook": self._set_webhook,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._webhook_info,
                "sendMessage": self._send_message,
                "editMessageText": lambda p: self._edit(p, "text"),
                "editMessageCaption": lambda p: self._edit(p, "caption"),
                "editMessageReplyMarkup": lambda p: self._edit(p, None),
                "editMessageMedia": self._edit_media,
                "deleteMessage": self._delete_message,
                "sendPhoto": self._send_photo,
                "sendDocument": self._send_document,
                "sendAnimation": self._send_animation,
                "sendMediaGroup": self._send_media_group,
                "getFile": self._get_file,
                "answerCallbackQuery": self._answer_callback_query,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": lambda p: self.commands(p.get("scope"), p.get("language_code", "")),
                "deleteMyCommands": self._delete_my_commands,
                "sendChatAction": lambda p: int_param(p, "chat_id") is not None,
                "close": lambda p: True,
                "logOut": lambda p: True,
            }.items()
        }

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    def application_builder(self) -> ApplicationBuilder:
        """An ApplicationBuilder with token and URLs pointing here."""
        return (
            ApplicationBuilder().token(self.token).base_url(self.base_url).base_file_url(self.base_file_url)
        )

    def env(self) -> dict[str, str]:
        """Environment variables that point a bot subprocess here."""
        return {
            "TELEGRAM_BOT_TOKEN": self.token,
            "TELEGRAM_API_URL": self.base_url,
            "TELEGRAM_FILE_URL": self.base_file_url,
        }

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1, serving from the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._closed = asyncio.Event()
        self._closing = False
        app = web.Application(client_max_size=UPLOAD_LIMIT + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        # Cancel handlers whose client went away (a killed bot's long poll), and don't wait for them on stop.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.2)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        """Release held requests and close the server."""
        self._closing = True
        self._set_wakeup()
        if self._closed is not None:
            self._closed.set()
        await self._stop_webhook()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @contextlib.contextmanager
    def run_in_thread(self) -> Iterator[FakeTelegram]:
        """Serve from a background thread with its own event loop (for bots running in a subprocess)."""
        loop = asyncio.new_event_loop()
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:
                ready.set_exception(exc)
                return
            ready.set_result(None)
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        thread = threading.Thread(target=serve, name="fake-telegram", daemon=True)
        thread.start()
        ready.result(timeout=10)
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        try:
            params, encoding = await read_params(request)
        except ValueError:
            return error_response(ApiError(400, "Bad Request: can't parse request body"))
        call = self._record(method, params, encoding)
        if request.match_info["token"] != self.token:
            return self._fail(call, ApiError(401, "Unauthorized"))
        handler = self._methods.get(method.lower())
        if handler is None and method.lower() != "getupdates":
            return self._fail(call, ApiError(404, "Not Found"))

        async def answer() -> web.StreamResponse:
            try:
                if handler is None:
                    result = await self._get_updates(params)
                else:
                    with self._lock:
                        chat_id = int_param(params, "chat_id") if "chat_id" in params else None
                        if chat_id is not None and chat_id in self._blocked:
                            raise ApiError(403, self._forbidden(chat_id))
                        check_markup(params.get("reply_markup"))
                        result = handler(params)
            except ApiError as exc:
                return self._fail(call, exc)
            call.status = 200
            return web.json_response({"ok": True, "result": result})

        return await self._with_faults(request, call, method.lower(), answer)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        call = self._record("download", {"file_path": path}, "query")
        if request.match_info["token"] != self.token:
            return self._fail(call, ApiError(401, "Unauthorized"))

        async def answer() -> web.StreamResponse:
            with self._lock:
                stored = next((f for f in self._files.values() if f.file_path == path), None)
                rate = self._download_rates.get(
                    stored.file_id if stored else None, self._download_rates.get(None)
                )
            if stored is None:
                return self._fail(call, ApiError(404, "Not Found"))
            if rate is not None:
                return await self._stream_slowly(request, call, stored.data, rate)
            call.status = 200
            return web.Response(body=stored.data, content_type="application/octet-stream")

        return await self._with_faults(request, call, "download", answer)

    async def _get_updates(self, params: JSON) -> list[JSON]:
        offset = int_param(params, "offset", 0)
        limit = min(max(int_param(params, "limit", 100), 1), 100)
        deadline = time.monotonic() + float(params.get("timeout", 0))
        with self._lock:
            if self._webhook is not None:
                raise ApiError(409, WEBHOOK_CONFLICT)
            if "allowed_updates" in params:
                self._allowed_updates = list(params["allowed_updates"])
            if offset > 0:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            elif offset < 0:
                self._updates = self._updates[offset:]
            self._poll_generation += 1
            generation = self._poll_generation
        self._set_wakeup()  # an older long poll now answers 409, as in Telegram
        while True:
            with self._lock:
                if self._webhook is not None:
                    raise ApiError(409, WEBHOOK_CONFLICT)
                if generation != self._poll_generation:
                    raise ApiError(409)
                if self._updates or self._closing or time.monotonic() >= deadline:
                    return self._updates[:limit]
            wakeup = self._wakeup
            assert wakeup is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), max(deadline - time.monotonic(), 0))
