"""The Bot API methods the fake implements, each called with the state's lock held."""

from __future__ import annotations

import time
from typing import Any, Literal

from tests.bot.fake_telegram.protocol import (
    BOT_COMMAND_NAME,
    DOWNLOAD_LIMIT,
    JSON,
    NOT_MODIFIED,
    ApiError,
    BotMessage,
    Version,
    bool_param,
    commands_key,
    int_param,
    utf16_len,
)
from tests.bot.fake_telegram.state import State


class Methods(State):
    """sendMessage, editMessage*, sendPhoto and the rest: Telegram's answers, refusals and side effects."""

    def _reply_target(self, chat_id: int, params: JSON) -> JSON | None:
        reply = params.get("reply_parameters") or {}
        message_id = reply.get("message_id", params.get("reply_to_message_id"))
        if message_id is None:
            return None
        target = self._messages.get((chat_id, int(message_id)))
        allow = bool_param(
            reply.get("allow_sending_without_reply", params.get("allow_sending_without_reply"))
        )
        if target is None and not allow:
            raise ApiError(400, "Bad Request: message to be replied not found")
        return target

    def _bot_message(self, params: JSON, kind: str, content: JSON, text: str | None, **record: Any) -> JSON:
        chat_id = int_param(params, "chat_id")
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
        if utf16_len(caption) > 1024:
            raise ApiError(400, "Bad Request: message caption is too long")
        return {"caption": caption} | (
            {"caption_entities": params["caption_entities"]} if "caption_entities" in params else {}
        )

    def _send_message(self, params: JSON) -> JSON:
        text = params.get("text") or ""
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        content = {"text": text} | ({"entities": params["entities"]} if "entities" in params else {})
        return self._bot_message(params, "text", content, text)

    def _edit(self, params: JSON, field_name: Literal["text", "caption"] | None) -> JSON:
        key = (int_param(params, "chat_id"), int_param(params, "message_id"))
        message, record = self._messages.get(key), self._outbox.get(key)
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if record is None:
            raise ApiError(400, "Bad Request: message can't be edited")
        if field_name == "text" and "text" not in message:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        if field_name == "caption" and "text" in message:
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        markup = params.get("reply_markup") or None
        text = record.text
        if field_name is not None:
            text = params.get(field_name) or None
            if field_name == "text" and not text:
                raise ApiError(400, "Bad Request: message text is empty")
        if text == record.text and markup == record.reply_markup:
            raise ApiError(400, NOT_MODIFIED)
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
        key = (int_param(params, "chat_id"), int_param(params, "message_id"))
        message, record = self._messages.get(key), self._outbox.get(key)
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if record is None or record.kind == "text":
            raise ApiError(400, "Bad Request: there is no media in the message to edit")
        media = params.get("media")
        if not isinstance(media, dict) or media.get("type") not in ("photo", "document", "animation"):
            raise ApiError(400, "Bad Request: can't parse InputMedia")
        value = media.get("media", "")
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value.removeprefix("attach://"))
        for stale in ("photo", "document", "animation", "caption", "caption_entities", "reply_markup"):
            message.pop(stale, None)
        if media["type"] == "photo":
            sizes = self._resolve_photo(value)
            message["photo"] = sizes
            update = self._photo_record(sizes)
        elif media["type"] == "animation":
            animation = self._resolve_animation(value, media)
            message["animation"] = animation
            update = self._clip_record(animation)
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
        key = (int_param(params, "chat_id"), int_param(params, "message_id"))
        if self._messages.pop(key, None) is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        if key in self._outbox:
            self._outbox[key].deleted = True
        return True

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

    def _send_animation(self, params: JSON) -> JSON:
        animation = self._resolve_animation(params.get("animation"), params)
        content: JSON = {"animation": animation} | self._caption(params)
        return self._bot_message(
            params, "animation", content, content.get("caption"), **self._clip_record(animation)
        )

    def _send_media_group(self, params: JSON) -> list[JSON]:
        media = params.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise ApiError(400, "Bad Request: wrong number of media")
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
            raise ApiError(400, "Bad Request: invalid file_id")
        if stored.size > DOWNLOAD_LIMIT:
            raise ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }

    def _answer_callback_query(self, params: JSON) -> bool:
        query_id = str(params.get("callback_query_id"))
        if query_id not in self._queries or self._queries[query_id] is not None:
            raise ApiError(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        self._queries[query_id] = {
            "text": params.get("text"),
            "show_alert": bool_param(params.get("show_alert")),
        }
        return True

    def _set_my_commands(self, params: JSON) -> bool:
        commands = params.get("commands") or []
        for command in commands:
            if not BOT_COMMAND_NAME.fullmatch(str(command.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(command.get("description", "")) <= 256:
                raise ApiError(400, "Bad Request: command description is empty or too long")
        self._commands[commands_key(params.get("scope"), params.get("language_code", ""))] = commands
        return True

    def _delete_my_commands(self, params: JSON) -> bool:
        self._commands.pop(commands_key(params.get("scope"), params.get("language_code", "")), None)
        return True
