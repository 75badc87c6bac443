"""A fake Telegram Bot API server on 127.0.0.1 for end-to-end tests, plus a test-side API to act as users.

Point python-telegram-bot at it with ``fake.application_builder()`` (or ``base_url``/``base_file_url``), or
give a bot subprocess ``fake.env()``. The server keeps the protocol's shapes: ``{"ok": true, "result": …}``,
errors with the HTTP status PTB maps to its exceptions, form and multipart bodies as PTB posts them.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import copy
import hashlib
import io
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

from aiohttp import web
from PIL import Image
from telegram.ext import ApplicationBuilder

__all__ = ["DEFAULT_TOKEN", "ApiCall", "BotMessage", "FakeTelegram", "Upload", "UserAction", "Version"]

T = TypeVar("T")
JSON = dict[str, Any]

DEFAULT_TOKEN = "5000000001:AAFakeTokenForTests_abcdefghijklmnopqrs"
DOWNLOAD_LIMIT = 20 * 1024 * 1024  # getFile refuses bigger files, as the real Bot API does
PHOTO_LIMIT = 10 * 1024 * 1024  # sendPhoto refuses bigger uploads
UPLOAD_LIMIT = 50 * 1024 * 1024  # any other upload
THUMB_SIDES = (90, 320, 800)  # Telegram's s/m/x photo sizes; the original is always added as the largest
# Fields PTB sends as JSON-encoded strings inside form and multipart bodies.
JSON_FIELDS = frozenset(
    {"reply_markup", "reply_parameters", "entities", "caption_entities", "media", "commands", "scope"}
    | {"allowed_updates", "link_preview_options"}
)
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
DESCRIPTIONS = {
    400: "Bad Request",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: CONFLICT,
    413: "Request Entity Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    504: "Gateway Timeout",
}
_COMMAND = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{5,32})?")
_BOT_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")


class _ApiError(Exception):
    def __init__(self, status: int, description: str | None = None, parameters: JSON | None = None) -> None:
        super().__init__(description or DESCRIPTIONS.get(status, "Error"))
        self.status = status
        self.description = description or DESCRIPTIONS.get(status, "Error")
        self.parameters = parameters


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request."""

    file_name: str
    mime_type: str
    data: bytes = field(repr=False)


@dataclass
class ApiCall:
    """One request the bot made, in arrival order."""

    method: str  # as in the URL ("sendMessage"), or "download" for the file route
    params: JSON  # decoded; JSON fields parsed, uploads as `Upload`
    time: float  # time.monotonic() on arrival
    encoding: str  # "json", "form", "multipart" or "query": how the client sent it
    status: int | None = None  # HTTP status answered; None while in flight, 0 when dropped or held
    description: str = ""  # error description, or which fault was injected


@dataclass(frozen=True)
class Version:
    """One state of a bot message: as sent, then after each edit."""

    time: float  # time.monotonic() of the send or edit
    text: str | None  # text, or caption of a media message
    reply_markup: JSON | None


@dataclass
class BotMessage:
    """A message the bot sent, as the chat shows it now, with its edit history."""

    chat_id: int
    message_id: int
    kind: str  # "text", "photo" or "document"
    date: int
    history: list[Version]
    reply_to_message_id: int | None = None
    media_group_id: str | None = None
    data: bytes | None = field(default=None, repr=False)  # uploaded bytes of a photo or document
    file_id: str | None = None  # of the largest photo size or of the document
    file_name: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    deleted: bool = False

    @property
    def text(self) -> str | None:
        return self.history[-1].text

    @property
    def reply_markup(self) -> JSON | None:
        return self.history[-1].reply_markup

    @property
    def sent_at(self) -> float:
        return self.history[0].time

    @property
    def edits(self) -> list[Version]:
        return self.history[1:]

    @property
    def buttons(self) -> list[JSON]:
        """The inline keyboard's buttons, row after row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [button for row in rows for button in row]


@dataclass(frozen=True)
class UserAction:
    """What a simulated user action created."""

    update_id: int
    message_id: int  # the user's new message, or the bot message whose button was pressed
    file_id: str | None = None  # largest photo size, document, sticker or voice
    callback_query_id: str | None = None


@dataclass
class _File:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes = field(repr=False)
    size: int  # what Telegram claims; tests may make it larger than the bytes


@dataclass
class _Fault:
    method: str  # lower-case method name, or "download"
    kind: int | Literal["timeout", "drop"]
    count: int
    match: JSON
    retry_after: int
    hold: float
    then_apply: bool
    description: str | None


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _command_entities(text: str) -> list[JSON]:
    """Telegram marks every /command so PTB's CommandHandler sees one at offset 0."""
    return [
        {
            "type": "bot_command",
            "offset": _utf16_len(text[: match.start()]),
            "length": _utf16_len(match.group()),
        }
        for match in _COMMAND.finditer(text)
    ]


def _image_size(data: bytes) -> tuple[int, int] | None:
    """The dimensions in the image header, without decoding pixels and without refusing huge ones."""
    Image.init()
    for factory, accept in Image.OPEN.values():
        if accept is not None and not accept(data[:16]):
            continue
        # Probing formats: a plugin that cannot read the header raises one of many errors, as in Image.open.
        try:
            return factory(io.BytesIO(data), "").size
        except Exception:
            continue
    return None


def _downscaled(data: bytes, side: int) -> bytes | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((side, side))
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=80)
            return out.getvalue()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def _int(params: JSON, name: str, default: int | None = None) -> int:
    value = params.get(name, default)
    if value is None:
        raise _ApiError(400, f"Bad Request: {name} is empty")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _ApiError(400, f"Bad Request: invalid {name} specified") from None


def _bool(value: object) -> bool:
    return value in (True, "true", "True", "1", 1)


async def _read_params(request: web.Request) -> tuple[JSON, str]:
    params: JSON = dict(request.query)
    encoding = "query"
    if request.body_exists:
        if request.content_type == "application/json":
            encoding = "json"
            params.update(await request.json())
        else:
            encoding = "multipart" if request.content_type.startswith("multipart/") else "form"
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    params[key] = Upload(value.filename, value.content_type, value.file.read())
                else:
                    params[key] = value
    for key in JSON_FIELDS & params.keys():
        if isinstance(params[key], str):
            params[key] = json.loads(params[key])
    return params, encoding


class FakeTelegram:
    """The fake Bot API server and the test-side API (act as users, inspect the bot's calls, inject faults).

    State is guarded by a lock so a test may drive a server running in another thread (`run_in_thread`).
    """

    def __init__(self, token: str = DEFAULT_TOKEN, *, hold_seconds: float = 10.0) -> None:
        self.token = token
        self.hold_seconds = hold_seconds  # default hold of a "timeout" fault: longer than PTB's 5 s
        self.bot_user: JSON = {
            "id": int(token.split(":")[0]),
            "is_bot": True,
            "first_name": "StyleBot",
            "username": "style_test_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.port = 0
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._wakeup: asyncio.Event | None = None
        self._closed: asyncio.Event | None = None
        self._background: set[asyncio.Task[web.StreamResponse]] = set()
        self._closing = False
        self._seq = itertools.count(1)
        self._next_update_id = 100_000_001
        self._updates: list[JSON] = []
        self._allowed_updates: list[str] = []
        self._poll_generation = 0
        self._last_message_id: dict[int, int] = {}
        self._messages: dict[tuple[int, int], JSON] = {}  # every live message, as Telegram JSON
        self._outbox: dict[tuple[int, int], BotMessage] = {}
        self._files: dict[str, _File] = {}
        self._photos: dict[str, list[JSON]] = {}  # any size's file_id -> all sizes of that photo
        self._documents: dict[str, JSON] = {}
        self._users: dict[int, JSON] = {}
        self._queries: dict[str, JSON | None] = {}  # callback query id -> its answer, None until answered
        self._commands: dict[tuple[str, str], list[JSON]] = {}
        self._faults: list[_Fault] = []
        self._blocked: set[int] = set()
        self._calls: list[ApiCall] = []
        self._methods: dict[str, Callable[[JSON], Any]] = {
            name.lower(): handler
            for name, handler in {
                "getMe": lambda p: self.bot_user,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": lambda p: (
                    {"url": "", "has_custom_certificate": False}
                    | {"pending_update_count": len(self._updates)}
                ),
                "sendMessage": self._send_message,
                "editMessageText": lambda p: self._edit(p, "text"),
                "editMessageCaption": lambda p: self._edit(p, "caption"),
                "editMessageReplyMarkup": lambda p: self._edit(p, None),
                "editMessageMedia": self._edit_media,
                "deleteMessage": self._delete_message,
                "sendPhoto": self._send_photo,
                "sendDocument": self._send_document,
                "sendMediaGroup": self._send_media_group,
                "getFile": self._get_file,
                "answerCallbackQuery": self._answer_callback_query,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": lambda p: self.commands(p.get("scope"), p.get("language_code", "")),
                "deleteMyCommands": self._delete_my_commands,
                "sendChatAction": lambda p: _int(p, "chat_id") is not None,
                "close": lambda p: True,
                "logOut": lambda p: True,
            }.items()
        }

    # -- lifecycle ------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    def application_builder(self) -> ApplicationBuilder:  # type: ignore[type-arg]
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

    def _wake_pollers(self) -> None:
        """Wake long polls; callable from any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is polling
                loop.call_soon_threadsafe(self._set_wakeup)

    def _set_wakeup(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = asyncio.Event()

    # -- HTTP -----------------------------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        try:
            params, encoding = await _read_params(request)
        except ValueError:
            return _error_response(_ApiError(400, "Bad Request: can't parse request body"))
        call = self._record(method, params, encoding)
        if request.match_info["token"] != self.token:
            return self._fail(call, _ApiError(401, "Unauthorized"))
        handler = self._methods.get(method.lower())
        if handler is None and method.lower() != "getupdates":
            return self._fail(call, _ApiError(404, "Not Found"))

        async def answer() -> web.StreamResponse:
            try:
                if handler is None:
                    result = await self._get_updates(params)
                else:
                    with self._lock:
                        if "chat_id" in params and _int(params, "chat_id") in self._blocked:
                            raise _ApiError(403)
                        result = handler(params)
            except _ApiError as exc:
                return self._fail(call, exc)
            call.status = 200
            return web.json_response({"ok": True, "result": result})

        return await self._with_faults(request, call, method.lower(), answer)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        call = self._record("download", {"file_path": path}, "query")
        if request.match_info["token"] != self.token:
            return self._fail(call, _ApiError(401, "Unauthorized"))

        async def answer() -> web.StreamResponse:
            with self._lock:
                stored = next((f for f in self._files.values() if f.file_path == path), None)
            if stored is None:
                return self._fail(call, _ApiError(404, "Not Found"))
            call.status = 200
            return web.Response(body=stored.data, content_type="application/octet-stream")

        return await self._with_faults(request, call, "download", answer)

    def _record(self, method: str, params: JSON, encoding: str) -> ApiCall:
        call = ApiCall(method, params, time.monotonic(), encoding)
        with self._lock:
            self._calls.append(call)
        return call

    def _fail(self, call: ApiCall, error: _ApiError) -> web.Response:
        call.status, call.description = error.status, error.description
        return _error_response(error)

    def _take_fault(self, method: str, params: JSON) -> _Fault | None:
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
            return self._fail(call, _ApiError(fault.kind, description, parameters))
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

    async def _get_updates(self, params: JSON) -> list[JSON]:
        offset = _int(params, "offset", 0)
        limit = min(max(_int(params, "limit", 100), 1), 100)
        deadline = time.monotonic() + float(params.get("timeout", 0))
        with self._lock:
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
                if generation != self._poll_generation:
                    raise _ApiError(409)
                if self._updates or self._closing or time.monotonic() >= deadline:
                    return self._updates[:limit]
            wakeup = self._wakeup
            assert wakeup is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), max(deadline - time.monotonic(), 0))

    # -- Bot API methods (called with the lock held) --------------------------------------------------

    def _delete_webhook(self, params: JSON) -> bool:
        if _bool(params.get("drop_pending_updates")):
            self._updates.clear()
        return True

    def _chat(self, chat_id: int) -> JSON:
        user = self._users.get(chat_id) or self._user(chat_id)
        chat = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
        return chat | ({"username": user["username"]} if "username" in user else {})

    def _new_message(self, chat_id: int, sender: JSON, content: JSON, reply_to: JSON | None) -> JSON:
        message_id = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = message_id
        message = {
            "message_id": message_id,
            "from": sender,
            "chat": self._chat(chat_id),
            "date": int(time.time()),
        }
        if reply_to is not None:
            message["reply_to_message"] = {k: v for k, v in reply_to.items() if k != "reply_to_message"}
        message |= content
        self._messages[(chat_id, message_id)] = message
        return message

    def _reply_target(self, chat_id: int, params: JSON) -> JSON | None:
        reply = params.get("reply_parameters") or {}
        message_id = reply.get("message_id", params.get("reply_to_message_id"))
        if message_id is None:
            return None
        target = self._messages.get((chat_id, int(message_id)))
        allow = _bool(reply.get("allow_sending_without_reply", params.get("allow_sending_without_reply")))
        if target is None and not allow:
            raise _ApiError(400, "Bad Request: message to be replied not found")
        return target

    def _bot_message(self, params: JSON, kind: str, content: JSON, text: str | None, **record: Any) -> JSON:
        chat_id = _int(params, "chat_id")
        markup = params.get("reply_markup")
        if markup and "inline_keyboard" in markup:
            content = content | {"reply_markup": markup}  # only inline keyboards are echoed back
        else:
            markup = None
        message = self._new_message(chat_id, self.bot_user, content, self._reply_target(chat_id, params))
        self._outbox[(chat_id, message["message_id"])] = BotMessage(
            chat_id=chat_id,
            message_id=message["message_id"],
            kind=kind,
            date=message["date"],
            history=[Version(time.monotonic(), text, markup)],
            reply_to_message_id=message.get("reply_to_message", {}).get("message_id"),
            media_group_id=content.get("media_group_id"),
            **record,
        )
        return message

    def _caption(self, params: JSON) -> JSON:
        caption = params.get("caption")
        if not caption:
            return {}
        if _utf16_len(caption) > 1024:
            raise _ApiError(400, "Bad Request: message caption is too long")
        return {"caption": caption} | (
            {"caption_entities": params["caption_entities"]} if "caption_entities" in params else {}
        )

    def _send_message(self, params: JSON) -> JSON:
        text = params.get("text") or ""
        if not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if _utf16_len(text) > 4096:
            raise _ApiError(400, "Bad Request: message is too long")
        content = {"text": text} | ({"entities": params["entities"]} if "entities" in params else {})
        return self._bot_message(params, "text", content, text)

    def _edit(self, params: JSON, field_name: Literal["text", "caption"] | None) -> JSON:
        key = (_int(params, "chat_id"), _int(params, "message_id"))
        message, record = self._messages.get(key), self._outbox.get(key)
        if message is None:
            raise _ApiError(400, "Bad Request: message to edit not found")
        if record is None:
            raise _ApiError(400, "Bad Request: message can't be edited")
        if field_name == "text" and "text" not in message:
            raise _ApiError(400, "Bad Request: there is no text in the message to edit")
        if field_name == "caption" and "text" in message:
            raise _ApiError(400, "Bad Request: there is no caption in the message to edit")
        markup = params.get("reply_markup") or None
        text = record.text
        if field_name is not None:
            text = params.get(field_name) or None
            if field_name == "text" and not text:
                raise _ApiError(400, "Bad Request: message text is empty")
        if text == record.text and markup == record.reply_markup:
            raise _ApiError(400, NOT_MODIFIED)
        content_key = "text" if record.kind == "text" else "caption"
        message.pop(content_key, None)
        message.pop("reply_markup", None)
        if text is not None:
            message[content_key] = text
        if markup is not None:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        record.history.append(Version(time.monotonic(), text, markup))
        return message

    def _edit_media(self, params: JSON) -> JSON:
        """Replace a photo or document message's file (and caption), as editMessageMedia does."""
        key = (_int(params, "chat_id"), _int(params, "message_id"))
        message, record = self._messages.get(key), self._outbox.get(key)
        if message is None:
            raise _ApiError(400, "Bad Request: message to edit not found")
        if record is None or record.kind == "text":
            raise _ApiError(400, "Bad Request: there is no media in the message to edit")
        media = params.get("media")
        if not isinstance(media, dict) or media.get("type") not in ("photo", "document"):
            raise _ApiError(400, "Bad Request: can't parse InputMedia")
        value = media.get("media", "")
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value.removeprefix("attach://"))
        for stale in ("photo", "document", "caption", "caption_entities", "reply_markup"):
            message.pop(stale, None)
        if media["type"] == "photo":
            sizes = self._resolve_photo(value)
            message["photo"] = sizes
            update = self._photo_record(sizes)
        else:
            document = self._resolve_document(value)
            message["document"] = document
            update = self._document_record(document) | {"width": None, "height": None}
        message.update(self._caption(media))
        markup = params.get("reply_markup") or None
        if markup is not None:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        record.kind = media["type"]
        for name, value in update.items():
            setattr(record, name, value)
        record.history.append(Version(time.monotonic(), message.get("caption"), markup))
        return message

    def _delete_message(self, params: JSON) -> bool:
        key = (_int(params, "chat_id"), _int(params, "message_id"))
        if self._messages.pop(key, None) is None:
            raise _ApiError(400, "Bad Request: message to delete not found")
        if key in self._outbox:
            self._outbox[key].deleted = True
        return True

    def _new_file(self, data: bytes, kind: str, extension: str, size: int | None = None) -> _File:
        n = next(self._seq)
        digest = base64.urlsafe_b64encode(hashlib.sha256(f"{kind}{n}".encode()).digest()).decode().rstrip("=")
        prefix = {"photo": "AgACAgIAAxkBAAI", "document": "BQACAgIAAxkBAAI"}.get(kind, "CAACAgIAAxkBAAI")
        stored = _File(
            file_id=f"{prefix}{n:06d}{digest[:40]}",
            file_unique_id=f"AQAD{digest[40:52]}",
            file_path=f"{kind}s/file_{n}.{extension}",
            data=data,
            size=len(data) if size is None else size,
        )
        self._files[stored.file_id] = stored
        return stored

    def _store_photo(
        self, data: bytes, size: int | None = None, dims: tuple[int, int] | None = None
    ) -> list[JSON]:
        """Photo sizes smallest first, as Telegram lists them; the largest holds the original bytes."""
        width, height = dims or _image_size(data) or (0, 0)
        if not width or not height:
            raise ValueError("not an image: pass width and height")
        sizes = []
        for side in THUMB_SIDES:
            thumb = _downscaled(data, side) if side < max(width, height) else None
            if thumb is not None:
                stored = self._new_file(thumb, "photo", "jpg")
                thumb_width, thumb_height = _image_size(thumb) or (side, side)
                sizes.append(_photo_size(stored, thumb_width, thumb_height))
        sizes.append(_photo_size(self._new_file(data, "photo", "jpg", size), width, height))
        for photo_size in sizes:
            self._photos[photo_size["file_id"]] = sizes
        return sizes

    def _resolve_photo(self, value: object) -> list[JSON]:
        if isinstance(value, Upload):
            if len(value.data) > PHOTO_LIMIT:
                raise _ApiError(413)
            dims = _image_size(value.data)
            if dims is None or _downscaled(value.data, 1) is None:
                raise _ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
            if sum(dims) > 10000 or max(dims) > 20 * min(dims):
                raise _ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
            return self._store_photo(value.data, dims=dims)
        if isinstance(value, str) and value in self._photos:
            return self._photos[value]
        raise _ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    def _resolve_document(self, value: object) -> JSON:
        if isinstance(value, Upload):
            if len(value.data) > UPLOAD_LIMIT:
                raise _ApiError(413)
            return self._store_document(value.data, value.file_name, value.mime_type)
        if isinstance(value, str) and value in self._documents:
            return self._documents[value]
        raise _ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    def _store_document(self, data: bytes, file_name: str, mime_type: str, size: int | None = None) -> JSON:
        stored = self._new_file(data, "document", file_name.rpartition(".")[2] or "bin", size)
        document = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": stored.size,
        }
        self._documents[stored.file_id] = document
        return document

    def _photo_record(self, sizes: list[JSON]) -> JSON:
        largest = sizes[-1]
        return {
            "data": self._files[largest["file_id"]].data,
            "file_id": largest["file_id"],
            "width": largest["width"],
            "height": largest["height"],
        }

    def _document_record(self, document: JSON) -> JSON:
        return {
            "data": self._files[document["file_id"]].data,
            "file_id": document["file_id"],
            "file_name": document["file_name"],
            "mime_type": document["mime_type"],
        }

    def _send_photo(self, params: JSON) -> JSON:
        sizes = self._resolve_photo(params.get("photo"))
        content: JSON = {"photo": sizes} | self._caption(params)
        return self._bot_message(
            params, "photo", content, content.get("caption"), **self._photo_record(sizes)
        )

    def _send_document(self, params: JSON) -> JSON:
        document = self._resolve_document(params.get("document"))
        content: JSON = {"document": document} | self._caption(params)
        return self._bot_message(
            params, "document", content, content.get("caption"), **self._document_record(document)
        )

    def _send_media_group(self, params: JSON) -> list[JSON]:
        media = params.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise _ApiError(400, "Bad Request: wrong number of media")
        group_id = str(13_000_000_000_000_000 + next(self._seq))
        resolved: list[tuple[str, JSON, JSON]] = []
        for item in media:
            value = item.get("media", "")
            if isinstance(value, str) and value.startswith("attach://"):
                value = params.get(value.removeprefix("attach://"))
            if item.get("type") == "photo":
                sizes = self._resolve_photo(value)
                content: JSON = {"photo": sizes, "media_group_id": group_id} | self._caption(item)
                resolved.append(("photo", content, self._photo_record(sizes)))
            else:
                document = self._resolve_document(value)
                content = {"document": document, "media_group_id": group_id} | self._caption(item)
                resolved.append(("document", content, self._document_record(document)))
        return [
            self._bot_message(
                params | {"reply_markup": None}, kind, content, content.get("caption"), **record
            )
            for kind, content, record in resolved
        ]

    def _get_file(self, params: JSON) -> JSON:
        stored = self._files.get(str(params.get("file_id")))
        if stored is None:
            raise _ApiError(400, "Bad Request: invalid file_id")
        if stored.size > DOWNLOAD_LIMIT:
            raise _ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }

    def _answer_callback_query(self, params: JSON) -> bool:
        query_id = str(params.get("callback_query_id"))
        if query_id not in self._queries or self._queries[query_id] is not None:
            raise _ApiError(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        self._queries[query_id] = {"text": params.get("text"), "show_alert": _bool(params.get("show_alert"))}
        return True

    def _set_my_commands(self, params: JSON) -> bool:
        commands = params.get("commands") or []
        for command in commands:
            if not _BOT_COMMAND_NAME.fullmatch(str(command.get("command", ""))):
                raise _ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(command.get("description", "")) <= 256:
                raise _ApiError(400, "Bad Request: command description is empty or too long")
        self._commands[_commands_key(params.get("scope"), params.get("language_code", ""))] = commands
        return True

    def _delete_my_commands(self, params: JSON) -> bool:
        self._commands.pop(_commands_key(params.get("scope"), params.get("language_code", "")), None)
        return True

    # -- acting as users ------------------------------------------------------------------------------

    def register_user(
        self,
        user_id: int,
        *,
        first_name: str | None = None,
        username: str | None = None,
        language_code: str = "en",
    ) -> None:
        """Set how a user appears in `from` and in their private chat (defaults: "User<id>", "en")."""
        with self._lock:
            self._users[user_id] = {
                "id": user_id,
                "is_bot": False,
                "first_name": first_name or f"User{user_id}",
            }
            self._users[user_id] |= {"language_code": language_code} | (
                {"username": username} if username else {}
            )

    def _user(self, user_id: int) -> JSON:
        if user_id not in self._users:
            self.register_user(user_id)
        return self._users[user_id]

    def _push_update(self, kind: str, payload: JSON) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        if not self._allowed_updates or kind in self._allowed_updates:
            self._updates.append({"update_id": update_id, kind: payload})
        self._wake_pollers()
        return update_id

    def _user_message(
        self, chat_id: int, user_id: int, content: JSON, reply_to: int | None = None
    ) -> UserAction:
        with self._lock:
            target = None
            if reply_to is not None:
                target = self._messages.get((chat_id, reply_to))
                if target is None:
                    raise ValueError(f"no message {reply_to} in chat {chat_id} to reply to")
            message = self._new_message(chat_id, self._user(user_id), content, target)
            update_id = self._push_update("message", message)
        file_id = next(
            (content[k]["file_id"] for k in ("document", "sticker", "voice") if k in content), None
        )
        if "photo" in content:
            file_id = content["photo"][-1]["file_id"]
        return UserAction(update_id, message["message_id"], file_id)

    async def user_sends_text(
        self, chat_id: int, user_id: int, text: str, *, reply_to: int | None = None
    ) -> UserAction:
        """A text message; every /command in it gets a bot_command entity."""
        entities = _command_entities(text)
        return self._user_message(
            chat_id, user_id, {"text": text} | ({"entities": entities} if entities else {}), reply_to
        )

    async def user_sends_photo(
        self,
        chat_id: int,
        user_id: int,
        image: bytes,
        caption: str | None = None,
        media_group_id: str | None = None,
        *,
        reply_to: int | None = None,
        file_size: int | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> UserAction:
        """A photo: downscaled sizes plus the original bytes as the largest (claiming `file_size` if given).

        `width`/`height` override the header's dimensions (needed only for bytes Pillow cannot read).
        """
        dims = (width, height) if width and height else None
        with self._lock:
            sizes = self._store_photo(image, file_size, dims)
        content: JSON = {"photo": sizes} | _caption_content(caption)
        if media_group_id is not None:
            content["media_group_id"] = media_group_id
        return self._user_message(chat_id, user_id, content, reply_to)

    async def user_sends_album(
        self, chat_id: int, user_id: int, images: Sequence[bytes], caption: str | None = None
    ) -> list[UserAction]:
        """Photos sharing one media_group_id, one update each; the caption goes on the first."""
        group_id = str(13_000_000_000_000_000 + next(self._seq))
        return [
            await self.user_sends_photo(chat_id, user_id, image, caption if i == 0 else None, group_id)
            for i, image in enumerate(images)
        ]

    async def user_sends_document(
        self,
        chat_id: int,
        user_id: int,
        data: bytes,
        file_name: str,
        mime_type: str,
        caption: str | None = None,
        *,
        reply_to: int | None = None,
        file_size: int | None = None,
    ) -> UserAction:
        """A file sent as a document, claiming `file_size` bytes if given."""
        with self._lock:
            document = self._store_document(data, file_name, mime_type, file_size)
        return self._user_message(
            chat_id, user_id, {"document": document} | _caption_content(caption), reply_to
        )

    async def user_sends_sticker(self, chat_id: int, user_id: int) -> UserAction:
        with self._lock:
            stored = self._new_file(b"RIFF\x00\x00\x00\x00WEBP", "sticker", "webp")
        sticker = _file_json(stored) | {"type": "regular", "width": 512, "height": 512}
        sticker |= {"is_animated": False, "is_video": False, "emoji": "🙂"}
        return self._user_message(chat_id, user_id, {"sticker": sticker})

    async def user_sends_voice(self, chat_id: int, user_id: int, duration: int = 2) -> UserAction:
        with self._lock:
            stored = self._new_file(b"OggS\x00\x02", "voice", "oga")
        voice = _file_json(stored) | {"duration": duration, "mime_type": "audio/ogg"}
        return self._user_message(chat_id, user_id, {"voice": voice})

    async def user_sends_location(
        self, chat_id: int, user_id: int, latitude: float = 52.52, longitude: float = 13.405
    ) -> UserAction:
        return self._user_message(
            chat_id, user_id, {"location": {"latitude": latitude, "longitude": longitude}}
        )

    async def user_presses_button(
        self, chat_id: int, user_id: int, message_id: int, callback_data: str, *, forged: bool = False
    ) -> UserAction:
        """A callback query for a button on a bot message; `forged` skips the check that the button exists."""
        with self._lock:
            message = self._messages.get((chat_id, message_id))
            record = self._outbox.get((chat_id, message_id))
            if message is None or record is None:
                raise ValueError(f"no bot message {message_id} in chat {chat_id}")
            if not forged and callback_data not in [b.get("callback_data") for b in record.buttons]:
                raise ValueError(f"message {message_id} has no button {callback_data!r}: {record.buttons}")
            query_id = str(4_000_000_000_000_000_000 + next(self._seq))
            self._queries[query_id] = None
            query = {
                "id": query_id,
                "from": self._user(user_id),
                "message": copy.deepcopy(message),
                "chat_instance": str(-(10**18) - chat_id),
                "data": callback_data,
            }
            update_id = self._push_update("callback_query", query)
        return UserAction(update_id, message_id, callback_query_id=query_id)

    # -- inspection -----------------------------------------------------------------------------------

    def messages(self, chat_id: int, *, include_deleted: bool = False) -> list[BotMessage]:
        """The bot's messages in a chat as they are now (oldest first), each with its edit history."""
        with self._lock:
            return [
                replace(m, history=list(m.history))
                for (chat, _), m in sorted(self._outbox.items())
                if chat == chat_id and (include_deleted or not m.deleted)
            ]

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
            return list(self._commands.get(_commands_key(scope, language_code), []))

    def file_bytes(self, file_id: str) -> bytes:
        with self._lock:
            return self._files[file_id].data

    async def wait_for(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline over many polls
        interval: float = 0.02,
    ) -> T:
        """Poll `predicate` until it returns something truthy and return that; fail with the recent calls."""
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
                f"  {c.time:.3f} {c.method} {c.status} {c.description} {_short(c.params)}" for c in calls
            )
            or "  (none)"
        )

    # -- fault injection ------------------------------------------------------------------------------

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
                _Fault(
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

    def set_file_size(self, file_id: str, size: int) -> None:
        """Claim a size for a stored file (over 20 MB makes getFile answer "file is too big").

        Messages already sent show the new size too: they share the photo size or document object.
        """
        with self._lock:
            self._files[file_id].size = size
            candidates = [*self._photos.get(file_id, []), self._documents.get(file_id, {})]
            for item in candidates:
                if item.get("file_id") == file_id:
                    item["file_size"] = size


def _photo_size(stored: _File, width: int, height: int) -> JSON:
    return _file_json(stored) | {"width": width, "height": height}


def _file_json(stored: _File) -> JSON:
    return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id, "file_size": stored.size}


def _caption_content(caption: str | None) -> JSON:
    if caption is None:
        return {}
    entities = _command_entities(caption)
    return {"caption": caption} | ({"caption_entities": entities} if entities else {})


def _commands_key(scope: JSON | None, language_code: str) -> tuple[str, str]:
    return json.dumps(scope or {"type": "default"}, sort_keys=True), language_code or ""


def _error_response(error: _ApiError) -> web.Response:
    body: JSON = {"ok": False, "error_code": error.status, "description": error.description}
    if error.parameters:
        body["parameters"] = error.parameters
    return web.json_response(body, status=error.status)


def _short(params: JSON) -> str:
    text = json.dumps(params, default=repr, ensure_ascii=False)
    return text if len(text) <= 200 else text[:200] + "…"
