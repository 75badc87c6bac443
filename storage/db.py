"""One SQLite connection shared by the store's parts, with a lock around every use."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

Clock = Callable[[], float]

BUSY_TIMEOUT_MS = 10_000
DAY = 86_400.0


class Database:
    """The connection, the clock, and a lock so that coroutines never interleave inside a transaction."""

    def __init__(self, conn: aiosqlite.Connection, clock: Clock) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self.clock = clock

    @classmethod
    async def connect(cls, path: Path, clock: Clock) -> Database:
        """Open `path` in autocommit mode with WAL, full sync, foreign keys and a busy timeout."""
        conn = await aiosqlite.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            conn.row_factory = sqlite3.Row
            await conn.execute("PRAGMA journal_mode = WAL")
            # FULL: every commit (a job queued, done, delivered) is on disk before the call returns, so a
            # power loss cannot undo a state the bot already acted on; one fsync per commit is cheap here.
            await conn.execute("PRAGMA synchronous = FULL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        except BaseException:
            await conn.close()
            raise
        return cls(conn, clock)

    async def close(self) -> None:
        """Close the connection once pending statements are done."""
        async with self._lock:
            await self._conn.close()

    @asynccontextmanager
    async def transaction(self, write: bool = True) -> AsyncIterator[Transaction]:
        """`BEGIN IMMEDIATE` … `COMMIT`, or `ROLLBACK` on any exception.

        `write=False` opens a deferred transaction: a consistent snapshot for several reads that
        does not hold the write lock.
        """
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
            try:
                yield Transaction(self._conn)
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run one statement on its own (autocommit) and return all its rows."""
        async with self._lock:
            return list(await self._conn.execute_fetchall(sql, params))

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        """Run one statement on its own and return its first row."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    def today(self) -> float:
        """Midnight UTC of the clock's current day, as seconds."""
        now = self.clock()
        return now - math.fmod(now, DAY)


class Transaction:
    """Statements inside one open transaction."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run `sql` and return all its rows."""
        return list(await self._conn.execute_fetchall(sql, params))

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        """Run `sql` and return its first row."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run `sql` and return the number of rows it changed."""
        async with self._conn.execute(sql, params) as cursor:
            return cursor.rowcount

    async def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run an INSERT and return the new row's id."""
        async with self._conn.execute(sql, params) as cursor:
            rowid = cursor.lastrowid
        assert rowid is not None
        return rowid

    async def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        """Run `sql` once for each parameter tuple."""
        await self._conn.executemany(sql, params)
