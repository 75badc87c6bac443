"""Incoming messages being handled: a crash mid-download leaves them here to be handled again."""

from __future__ import annotations

import dataclasses

from storage.db import Database
from storage.models import InboxItem

# A message whose handling was cut short this many times is dropped rather than tried forever.
MAX_INBOX_ATTEMPTS = 3

_FIELDS = [field.name for field in dataclasses.fields(InboxItem)]
_STORED = [name for name in _FIELDS if name != "attempts"]


class Inbox:
    """Record a message before its slow handling starts; forget it once handled."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, item: InboxItem) -> None:
        """Remember a message until `done` is called for its update; a repeat add is harmless."""
        await self._db.fetchall(
            f"INSERT INTO inbox ({', '.join(_STORED)}, received_at)"
            f" VALUES ({', '.join('?' * len(_STORED))}, ?) ON CONFLICT (update_id) DO NOTHING",
            (*(getattr(item, name) for name in _STORED), self._db.clock()),
        )

    async def done(self, update_id: int) -> None:
        """The update was handled (successfully or with an answer to the user)."""
        await self._db.fetchall("DELETE FROM inbox WHERE update_id = ?", (update_id,))

    async def take_unfinished(self) -> list[InboxItem]:
        """Messages a previous run started but did not finish, oldest first; each call counts an attempt.

        Those already tried `MAX_INBOX_ATTEMPTS` times are deleted instead of returned.
        """
        async with self._db.transaction() as tx:
            await tx.execute("DELETE FROM inbox WHERE attempts >= ?", (MAX_INBOX_ATTEMPTS,))
            rows = await tx.fetchall(
                f"UPDATE inbox SET attempts = attempts + 1 RETURNING {', '.join(_FIELDS)}"
            )
        items = [InboxItem(**{name: row[name] for name in _FIELDS}) for row in rows]
        return sorted(items, key=lambda item: item.update_id)
