"""The Bot API's shapes and limits: constants, records of what happened, and request/response helpers."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from PIL import Image

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
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
COMMAND = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{5,32})?")
BOT_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")


class ApiError(Exception):
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
    kind: str  # "text", "photo", "document" or "animation"
    date: int
    history: list[Version]
    reply_to_message_id: int | None = None
    media_group_id: str | None = None
    data: bytes | None = field(default=None, repr=False)  # uploaded bytes of a photo, document or animation
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
    delivered: bool = True  # False when privacy mode kept the update from the bot (update_id is then 0)


@dataclass(frozen=True)
class WebhookPost:
    """One post of an update to the bot's webhook and how it was answered."""

    update_id: int
    url: str
    status: int | None  # HTTP status the bot answered; None when it did not answer (refused, timed out)
    error: str  # what getWebhookInfo's last_error_message says if this post failed


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes = field(repr=False)
    size: int  # what Telegram claims; tests may make it larger than the bytes


@dataclass
class Fault:
    method: str  # lower-case method name, or "download"
    kind: int | Literal["timeout", "drop"]
    count: int
    match: JSON
    retry_after: int
    hold: float
    then_apply: bool
    description: str | None


@dataclass
class FloodLimit:
    """Telegram's flood control for one chat: a bucket of `burst` calls refilled at `per_second`."""

    per_second: float
    burst: float
    retry_after: int  # seconds a call beyond the bucket is told to wait; the chat is refused until then
    tokens: float
    stamp: float  # time.monotonic() the tokens were counted
    until: float = 0.0  # every call for the chat is refused until then
    refused: int = 0  # calls answered 429 so far


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def command_entities(text: str) -> list[JSON]:
    """Telegram marks every /command so PTB's CommandHandler sees one at offset 0."""
    return [
        {
            "type": "bot_command",
            "offset": utf16_len(text[: match.start()]),
            "length": utf16_len(match.group()),
        }
        for match in COMMAND.finditer(text)
    ]


def image_size(data: bytes) -> tuple[int, int] | None:
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


def downscaled(data: bytes, side: int) -> bytes | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((side, side))
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=80)
            return out.getvalue()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def int_param(params: JSON, name: str, default: int | None = None) -> int:
    value = params.get(name, default)
    if value is None:
        raise ApiError(400, f"Bad Request: {name} is empty")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"Bad Request: invalid {name} specified") from None


def bool_param(value: object) -> bool:
    return value in (True, "true", "True", "1", 1)


async def read_params(request: web.Request) -> tuple[JSON, str]:
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


def photo_size(stored: StoredFile, width: int, height: int) -> JSON:
    return file_json(stored) | {"width": width, "height": height}


def file_json(stored: StoredFile) -> JSON:
    return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id, "file_size": stored.size}


def caption_content(caption: str | None) -> JSON:
    if caption is None:
        return {}
    entities = command_entities(caption)
    return {"caption": caption} | ({"caption_entities": entities} if entities else {})


def commands_key(scope: JSON | None, language_code: str) -> tuple[str, str]:
    return json.dumps(scope or {"type": "default"}, sort_keys=True), language_code or ""


def error_response(error: ApiError) -> web.Response:
    body: JSON = {"ok": False, "error_code": error.status, "description": error.description}
    if error.parameters:
        body["parameters"] = error.parameters
    return web.json_response(body, status=error.status)


def check_markup(markup: object) -> None:
    """Telegram refuses an inline keyboard whose button carries callback_data outside 1-64 bytes of UTF-8."""
    rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
    for button in (button for row in rows for button in row):
        data = button.get("callback_data")
        if data is not None and not 1 <= len(str(data).encode()) <= 64:
            raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


def gateway_error(status: int) -> web.Response:
    """The HTML page Telegram's front server answers with when the Bot API behind it is unreachable."""
    reason = DESCRIPTIONS.get(status, "Error")
    page = f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    page += (
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    return web.Response(text=page, status=status, content_type="text/html")


def short_params(params: JSON) -> str:
    text = json.dumps(params, default=repr, ensure_ascii=False)
    return text if len(text) <= 200 else text[:200] + "…"
