"""Group, supergroup and channel chats: creating them, their members, channel posts and privacy mode.

Privacy mode (on by default, as for a bot whose getMe says ``can_read_all_group_messages: false``): in a
group or supergroup the bot gets an update only for a message that

- starts with a /command that is bare or addressed to this bot (``/style`` or ``/style@style_test_bot``),
- replies to one of the bot's messages, or
- carries a photo or a document (a simplification: real Telegram would filter these too).

Every other message still exists in the chat (it takes a message id and can be replied to) but is not
delivered. Set ``privacy_mode = False`` to deliver everything. Private chats and channels are not filtered.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from tests.bot.fake_telegram.protocol import COMMAND, JSON, UserAction, caption_content
from tests.bot.fake_telegram.state import State

GROUP_TYPES = ("group", "supergroup")
# Ids in the ranges Telegram uses: basic groups are small negatives, supergroups and channels are -100….
_FIRST_ID = {"group": -4_000_000_000, "supergroup": -1_002_000_000_000, "channel": -1_003_000_000_000}


class Chats(State):
    """Chats other than a user's private chat with the bot."""

    def create_group(
        self,
        title: str = "Test group",
        members: Iterable[int] = (),
        *,
        kind: Literal["group", "supergroup"] = "supergroup",
        chat_id: int | None = None,
        username: str | None = None,
    ) -> int:
        """A group (or supergroup) with these member users and the bot in it; returns its (negative) id."""
        chat_id = self._new_chat(kind, title, chat_id, username)
        with self._lock:
            self._members[chat_id] = set(members)
        return chat_id

    def create_channel(
        self, title: str = "Test channel", *, chat_id: int | None = None, username: str | None = None
    ) -> int:
        """A channel the bot is an administrator of; returns its (negative) id."""
        return self._new_chat("channel", title, chat_id, username)

    def add_member(self, chat_id: int, user_id: int) -> None:
        """The user joins the group (no service message is sent)."""
        with self._lock:
            self._group(chat_id)
            self._members[chat_id].add(user_id)

    def members(self, chat_id: int) -> set[int]:
        with self._lock:
            return set(self._members.get(chat_id, ()))

    async def channel_posts(
        self,
        chat_id: int,
        text: str | None = None,
        *,
        photo: bytes | None = None,
        caption: str | None = None,
        sender_chat: bool = True,
        author_signature: str | None = None,
    ) -> UserAction:
        """A post in a channel, delivered as a `channel_post`: text or a photo, never a `from` field.

        `sender_chat` (the channel itself, as Telegram sets it) may be left out to test bots that read it.
        """
        if (text is None) == (photo is None):
            raise ValueError("a channel post has either text or a photo")
        with self._lock:
            if self._chats.get(chat_id, {}).get("type") != "channel":
                raise ValueError(f"no channel {chat_id}: create it with create_channel()")
            content: JSON = {"text": text} if text is not None else {}
            if photo is not None:
                content = {"photo": self._store_photo(photo)} | caption_content(caption)
            if author_signature is not None:
                content["author_signature"] = author_signature
            message = self._new_message(chat_id, self.bot_user, content, None)
            if not sender_chat:
                message.pop("sender_chat")
            update_id = self._push_update("channel_post", message)
        file_id = message["photo"][-1]["file_id"] if "photo" in message else None
        return UserAction(update_id, message["message_id"], file_id)

    def _new_chat(self, kind: str, title: str, chat_id: int | None, username: str | None) -> int:
        with self._lock:
            if chat_id is None:
                chat_id = _FIRST_ID[kind] - next(self._seq)
            if chat_id >= 0 or chat_id in self._chats:
                raise ValueError(f"chat id {chat_id} is taken or not negative")
            self._chats[chat_id] = {"id": chat_id, "title": title, "type": kind} | (
                {"username": username} if username else {}
            )
        return chat_id

    def _group(self, chat_id: int) -> JSON:
        chat = self._chats.get(chat_id)
        if chat is None or chat["type"] not in GROUP_TYPES:
            raise ValueError(f"no group {chat_id}: create it with create_group()")
        return chat

    def _check_sender(self, chat_id: int, user_id: int) -> None:
        """A user writes in their own (or any positive) private chat, or in a group they are a member of."""
        if chat_id < 0:
            self._group(chat_id)
            if user_id not in self._members[chat_id]:
                raise ValueError(f"user {user_id} is not a member of group {chat_id}")

    def _bot_sees(self, message: JSON) -> bool:
        """Whether privacy mode lets the bot see a user's message (see the module's docstring)."""
        if message["chat"]["type"] not in GROUP_TYPES or not self.privacy_mode:
            return True
        if "photo" in message or "document" in message:
            return True
        if message.get("reply_to_message", {}).get("from", {}).get("id") == self.bot_user["id"]:
            return True
        command = COMMAND.match(message.get("text") or message.get("caption") or "")
        addressee = command.group().partition("@")[2] if command else ""
        return command is not None and addressee.lower() in ("", self.bot_user["username"].lower())

    def _forbidden(self, chat_id: int) -> str:
        kind = self._chats.get(chat_id, {}).get("type", "private")
        if kind == "private":
            return "Forbidden: bot was blocked by the user"
        if kind == "channel":
            return "Forbidden: bot is not a member of the channel chat"
        return f"Forbidden: bot was kicked from the {kind} chat"
