"""The fake's shared state: users, chats, messages, updates and stored files (used with the lock held)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import threading
import time
from typing import Literal

from aiohttp import web

from tests.bot.fake_telegram.protocol import (
    JSON,
    PHOTO_LIMIT,
    THUMB_SIDES,
    UPLOAD_LIMIT,
    ApiCall,
    ApiError,
    BotMessage,
    Fault,
    FloodLimit,
    StoredFile,
    Upload,
    WebhookPost,
    downscaled,
    file_json,
    image_size,
    int_param,
    photo_size,
)


class State:
    """Everything the server and the test-side API share; the mixins below add behaviour to it."""

    def __init__(self, token: str, hold_seconds: float) -> None:
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
        self._webhook: JSON | None = None  # url, secret_token, max_connections; None: getUpdates works
        self._webhook_error: tuple[float, str] | None = None  # when and why the last post failed
        self._webhook_posts: list[WebhookPost] = []
        self._webhook_task: asyncio.Task[None] | None = None
        self._last_message_id: dict[int, int] = {}
        self._messages: dict[tuple[int, int], JSON] = {}  # every live message, as Telegram JSON
        self._outbox: dict[tuple[int, int], BotMessage] = {}
        self._files: dict[str, StoredFile] = {}
        self._photos: dict[str, list[JSON]] = {}  # any size's file_id -> all sizes of that photo
        self._documents: dict[str, JSON] = {}
        self._clips: dict[str, JSON] = {}  # file_id -> the animation, video or video note object
        self._users: dict[int, JSON] = {}
        self._queries: dict[str, JSON | None] = {}  # callback query id -> its answer, None until answered
        self._commands: dict[tuple[str, str], list[JSON]] = {}
        self._faults: list[Fault] = []
        self._blocked: set[int] = set()
        self._floods: dict[int, FloodLimit] = {}  # chat id -> its flood control, when a test set one
        self._outages: dict[str, tuple[float, int | Literal["drop"]]] = {}  # method -> (until, status)
        self._download_rates: dict[str | None, float] = {}  # file_id (None: any file) -> bytes a second
        self._calls: list[ApiCall] = []
        self._chats: dict[int, JSON] = {}  # groups, supergroups and channels by (negative) id
        self._members: dict[int, set[int]] = {}  # group id -> the users who may write in it
        self.privacy_mode = True  # in groups the bot sees only some messages: see chats.py

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

    def _chat(self, chat_id: int) -> JSON:
        if chat_id in self._chats:
            return dict(self._chats[chat_id])
        if chat_id < 0:
            raise ApiError(400, "Bad Request: chat not found")
        user = self._users.get(chat_id) or self._user(chat_id)
        chat = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
        return chat | ({"username": user["username"]} if "username" in user else {})

    def _new_message(self, chat_id: int, sender: JSON, content: JSON, reply_to: JSON | None) -> JSON:
        chat = self._chat(chat_id)
        message_id = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = message_id
        message: JSON = {"message_id": message_id}
        if chat["type"] == "channel":
            message["sender_chat"] = chat  # posts in a channel are signed by it and have no `from`
        else:
            message["from"] = sender
        message |= {"chat": chat, "date": int(time.time())}
        if reply_to is not None:
            message["reply_to_message"] = {k: v for k, v in reply_to.items() if k != "reply_to_message"}
        message |= content
        self._messages[(chat_id, message_id)] = message
        return message

    def _new_file(self, data: bytes, kind: str, extension: str, size: int | None = None) -> StoredFile:
        n = next(self._seq)
        digest = base64.urlsafe_b64encode(hashlib.sha256(f"{kind}{n}".encode()).digest()).decode().rstrip("=")
        prefix = {"photo": "AgACAgIAAxkBAAI", "document": "BQACAgIAAxkBAAI"}.get(kind, "CAACAgIAAxkBAAI")
        stored = StoredFile(
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
        width, height = dims or image_size(data) or (0, 0)
        if not width or not height:
            raise ValueError("not an image: pass width and height")
        sizes = []
        for side in THUMB_SIDES:
            thumb = downscaled(data, side) if side < max(width, height) else None
            if thumb is not None:
                stored = self._new_file(thumb, "photo", "jpg")
                thumb_width, thumb_height = image_size(thumb) or (side, side)
                sizes.append(photo_size(stored, thumb_width, thumb_height))
        sizes.append(photo_size(self._new_file(data, "photo", "jpg", size), width, height))
        for size_json in sizes:
            self._photos[size_json["file_id"]] = sizes
        return sizes

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

    def _store_clip(self, data: bytes, kind: str, fields: JSON, size: int | None = None) -> JSON:
        """An animation, video or video note: the file plus the `fields` Telegram reports for its kind."""
        stored = self._new_file(data, kind, "mp4", size)
        clip = file_json(stored) | fields
        self._clips[stored.file_id] = clip
        return clip

    def _resolve_animation(self, value: object, params: JSON) -> JSON:
        if isinstance(value, Upload):
            if len(value.data) > UPLOAD_LIMIT:
                raise ApiError(413)
            if not value.data:
                raise ApiError(400, "Bad Request: file must be non-empty")
            fields = {name: int_param(params, name, 0) for name in ("width", "height", "duration")}
            mime = {"mime_type": value.mime_type, "file_name": value.file_name}
            return self._store_clip(value.data, "animation", fields | mime)
        if isinstance(value, str) and value in self._clips:
            return self._clips[value]
        raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    def _clip_record(self, clip: JSON) -> JSON:
        return {
            "data": self._files[clip["file_id"]].data,
            "file_id": clip["file_id"],
            "file_name": clip.get("file_name"),
            "mime_type": clip.get("mime_type"),
            "width": clip.get("width"),
            "height": clip.get("height"),
        }

    def _resolve_photo(self, value: object) -> list[JSON]:
        if isinstance(value, Upload):
            if len(value.data) > PHOTO_LIMIT:
                raise ApiError(413)
            dims = image_size(value.data)
            if dims is None or downscaled(value.data, 1) is None:
                raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
            if sum(dims) > 10000 or max(dims) > 20 * min(dims):
                raise ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
            return self._store_photo(value.data, dims=dims)
        if isinstance(value, str) and value in self._photos:
            return self._photos[value]
        raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    def _resolve_document(self, value: object) -> JSON:
        if isinstance(value, Upload):
            if len(value.data) > UPLOAD_LIMIT:
                raise ApiError(413)
            return self._store_document(value.data, value.file_name, value.mime_type)
        if isinstance(value, str) and value in self._documents:
            return self._documents[value]
        raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

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

    def set_file_size(self, file_id: str, size: int) -> None:
        """Claim a size for a stored file (over 20 MB makes getFile answer "file is too big").

        Messages already sent show the new size too: they share the photo size or document object.
        """
        with self._lock:
            self._files[file_id].size = size
            candidates = [
                *self._photos.get(file_id, []),
                self._documents.get(file_id, {}),
                self._clips.get(file_id, {}),
            ]
            for item in candidates:
                if item.get("file_id") == file_id:
                    item["file_size"] = size
