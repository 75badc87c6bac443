"""The test-side API that acts as users: messages, photos, documents, edits, button presses."""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Literal

from tests.bot.fake_telegram.chats import Chats
from tests.bot.fake_telegram.protocol import JSON, UserAction, caption_content, command_entities, file_json


class Users(Chats):
    """Users acting in private chats and groups; each action queues the update the bot would get.

    In a group the user must be a member (`create_group`, `add_member`) and privacy mode applies.
    """

    def _user_message(
        self, chat_id: int, user_id: int, content: JSON, reply_to: int | None = None
    ) -> UserAction:
        with self._lock:
            self._check_sender(chat_id, user_id)
            target = None
            if reply_to is not None:
                target = self._messages.get((chat_id, reply_to))
                if target is None:
                    raise ValueError(f"no message {reply_to} in chat {chat_id} to reply to")
            message = self._new_message(chat_id, self._user(user_id), content, target)
            return self._deliver("message", message)

    def _deliver(self, kind: str, message: JSON) -> UserAction:
        """Queue a user's message as an update of `kind`, unless privacy mode hides it from the bot."""
        seen = self._bot_sees(message)
        update_id = self._push_update(kind, message) if seen else 0
        kinds = ("animation", "video", "video_note", "document", "sticker", "voice")
        file_id = next((message[k]["file_id"] for k in kinds if k in message), None)
        if "photo" in message:
            file_id = message["photo"][-1]["file_id"]
        return UserAction(update_id, message["message_id"], file_id, delivered=seen)

    async def user_edits_message(
        self,
        chat_id: int,
        user_id: int,
        message_id: int,
        text: str | None = None,
        caption: str | None = None,
    ) -> UserAction:
        """The user edits their message: an `edited_message` update with the same message_id, `edit_date`
        set, the new text (or caption; "" removes it) and the photo or document the message had."""
        if (text is None) == (caption is None):
            raise ValueError("an edit changes either the text or the caption")
        with self._lock:
            original = self._messages.get((chat_id, message_id))
            if original is None or original.get("from", {}).get("id") != user_id:
                raise ValueError(f"user {user_id} has no message {message_id} in chat {chat_id}")
            if (text is None) == ("text" in original):
                raise ValueError(f"message {message_id} has {'text' if text is None else 'a caption'}")
            edited = {
                k: v
                for k, v in original.items()
                if k not in ("text", "entities", "caption", "caption_entities")
            }
            if text is not None:
                entities = command_entities(text)
                edited |= {"text": text} | ({"entities": entities} if entities else {})
            else:
                edited |= caption_content(caption or None)
            edited["edit_date"] = max(int(time.time()), original["date"])
            # A new dict: the update already queued for the original keeps showing the original.
            self._messages[(chat_id, message_id)] = edited
            return self._deliver("edited_message", edited)

    async def user_sends_text(
        self, chat_id: int, user_id: int, text: str, *, reply_to: int | None = None
    ) -> UserAction:
        """A text message; every /command in it gets a bot_command entity."""
        entities = command_entities(text)
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
        content: JSON = {"photo": sizes} | caption_content(caption)
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
            chat_id, user_id, {"document": document} | caption_content(caption), reply_to
        )

    async def user_sends_clip(
        self,
        chat_id: int,
        user_id: int,
        data: bytes,
        kind: Literal["animation", "video", "video_note"],
        *,
        width: int,
        height: int,
        duration: int,
        caption: str | None = None,
        file_size: int | None = None,
    ) -> UserAction:
        """A GIF (Telegram sends the bot an `animation`, an MP4, with the same file as a `document`
        beside it), a video, or a round video note (square: one `length`, no caption), as Telegram reports
        them: size and duration from the sender's client, claiming `file_size` bytes if given."""
        mime = {"mime_type": "video/mp4"}
        if kind == "video_note":
            if width != height:
                raise ValueError("a video note is square")
            fields: JSON = {"length": width, "duration": duration}
        else:
            fields = {"width": width, "height": height, "duration": duration} | mime
        if kind == "animation":
            fields["file_name"] = "animation.gif.mp4"
        with self._lock:
            clip = self._store_clip(data, kind, fields, file_size)
        content: JSON = {kind: clip}
        if kind == "animation":
            content["document"] = (
                {k: clip[k] for k in ("file_id", "file_unique_id", "file_size")}
                | {"file_name": clip["file_name"]}
                | mime
            )
        if kind != "video_note":
            content |= caption_content(caption)
        return self._user_message(chat_id, user_id, content)

    async def user_sends_sticker(self, chat_id: int, user_id: int) -> UserAction:
        with self._lock:
            stored = self._new_file(b"RIFF\x00\x00\x00\x00WEBP", "sticker", "webp")
        sticker = file_json(stored) | {"type": "regular", "width": 512, "height": 512}
        sticker |= {"is_animated": False, "is_video": False, "emoji": "🙂"}
        return self._user_message(chat_id, user_id, {"sticker": sticker})

    async def user_sends_voice(self, chat_id: int, user_id: int, duration: int = 2) -> UserAction:
        with self._lock:
            stored = self._new_file(b"OggS\x00\x02", "voice", "oga")
        voice = file_json(stored) | {"duration": duration, "mime_type": "audio/ogg"}
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
            self._check_sender(chat_id, user_id)
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
