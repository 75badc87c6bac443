"""Who used the bot, and the counts quotas are checked against."""

from __future__ import annotations

import sqlite3

from storage.db import DAY, Database
from storage.models import User

_SELECT = (
    "SELECT u.*,"
    " (SELECT COUNT(*) FROM jobs j WHERE j.user_id = u.user_id"
    " AND j.status IN ('queued', 'running')) AS active,"
    " (SELECT COUNT(*) FROM jobs j WHERE j.user_id = u.user_id AND j.created_at >= ?) AS today"
    " FROM users u WHERE u.user_id = ?"
)


class Users:
    """Record and look up users."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def touch(self, user_id: int, language: str | None = None) -> User:
        """Note that the user is here now (and their language, when known); return them."""
        now = self._db.clock()
        async with self._db.transaction() as tx:
            await tx.execute(
                "INSERT INTO users (user_id, first_seen, last_seen, language) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (user_id) DO UPDATE SET last_seen = excluded.last_seen,"
                " language = COALESCE(excluded.language, language)",
                (user_id, now, now, language),
            )
            row = await tx.fetchone(_SELECT, (self._db.today(), user_id))
        assert row is not None
        return _user(row)

    async def get(self, user_id: int) -> User | None:
        """The user with this id, if they were ever seen."""
        row = await self._db.fetchone(_SELECT, (self._db.today(), user_id))
        return _user(row) if row is not None else None

    async def record_upload(self, user_id: int) -> None:
        """Count one picture the user sent now."""
        now = self._db.clock()
        await self._db.fetchall("INSERT INTO uploads (user_id, at) VALUES (?, ?)", (user_id, now))

    async def daily_wait(self, user_id: int, limit: int) -> float | None:
        """Seconds until the user may send a picture again, when they sent `limit` in the last 24 hours.

        None while they are under the limit. The day rolls: each picture stops counting 24 hours after
        it was sent, so the wait ends when the `limit`-th latest one leaves the window.
        """
        now = self._db.clock()
        row = await self._db.fetchone(
            "SELECT at FROM uploads WHERE user_id = ? AND at > ? ORDER BY at DESC LIMIT 1 OFFSET ?",
            (user_id, now - DAY, limit - 1),
        )
        return None if row is None else row["at"] + DAY - now

    async def forget_uploads(self, before: float) -> None:
        """Drop the count of pictures sent before `before` (those older than a day count for nothing)."""
        await self._db.fetchall("DELETE FROM uploads WHERE at < ?", (before,))


def _user(row: sqlite3.Row) -> User:
    return User(
        user_id=row["user_id"],
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        language=row["language"],
        active_jobs=row["active"],
        jobs_today=row["today"],
    )
