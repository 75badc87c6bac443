"""Incoming messages being handled: a crash mid-download leaves them here to be handled again."""

from __future__ import annotations

from storage.db import Database
from storage.models import InboxItem

# A message whose handling was cut short this many times is dropped rather than tried forever.
MAX_INBOX_ATTEMPTS = 3


class Inbox:
    """Record a message before its slow handling starts; forget it once handled."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, update_id: int, chat_id: int, payload: str) -> None:
        """Remember an update (its JSON) until `done` is called for it; a repeat add is harmless."""
        await self._db.fetchall(
            "INSERT INTO inbox (update_id, chat_id, payload, received_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (update_id) DO NOTHING",
            (update_id, chat_id, payload, self._db.clock()),
        )

    async def done(self, update_id: int) -> None:
        """The update was handled (successfully or with an answer to the user)."""
        await self._db.fetchall("DELETE FROM inbox WHERE update_id = ?", (update_id,))

    async def take_unfinished(self) -> list[InboxItem]:
        """Updates a previous run started but did not finish, oldest first; each call counts an attempt.

        Those already tried `MAX_INBOX_ATTEMPTS` times are deleted instead of returned.
        """
        async with self._db.transaction() as tx:
            await tx.execute("DELETE FROM inbox WHERE attempts >= ?", (MAX_INBOX_ATTEMPTS,))
            rows = await tx.fetchall(
                "UPDATE inbox SET attempts = attempts + 1 RETURNING update_id, chat_id, payload, attempts"
            )
        items = [InboxItem(r["update_id"], r["chat_id"], r["payload"], r["attempts"]) for r in rows]
        return sorted(items, key=lambda item: item.update_id)
