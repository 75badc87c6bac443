"""The `Store`: opened once, it holds the connection and the parts that use it."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Generator
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any

from storage.db import DAY, Clock, Database
from storage.files import DataDir, remove
from storage.inbox import Inbox
from storage.jobs import Jobs
from storage.models import JobStatus, Limits, RecoveryReport, Settings, Stats
from storage.presets import Presets
from storage.schema import migrate
from storage.sessions import Sessions
from storage.settings import SettingsStore
from storage.users import Users

logger = logging.getLogger(__name__)


class Store:
    """Everything the bot keeps: `jobs`, `sessions`, `presets`, `settings`, `users` and `files`.

    Open it with `async with Store.open(data_dir) as store:` or `store = await Store.open(data_dir)`
    followed by `await store.close()`.
    """

    def __init__(
        self, db: Database, files: DataDir, settings: SettingsStore, recovery: RecoveryReport
    ) -> None:
        self._db = db
        self.files = files
        self.jobs = Jobs(db)
        self.sessions = Sessions(db)
        self.presets = Presets(db)
        self.settings = settings
        self.users = Users(db)
        self.inbox = Inbox(db)
        self.recovery = recovery  # what the last run left behind, found at open

    @staticmethod
    def open(
        data_dir: Path,
        *,
        defaults: Settings | None = None,
        limits: Limits | None = None,
        clock: Clock = time.time,
        recover: bool = True,
    ) -> _Opening:
        """Open (creating or migrating) the store in `data_dir`.

        `defaults` and `limits` come from the configuration; `recover=False` skips requeueing running
        jobs, for a second process sharing the database with a live one.
        """
        return _Opening(data_dir, defaults or Settings(), limits or Limits(), clock, recover)

    async def close(self) -> None:
        """Close the database connection."""
        await self._db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def stats(self) -> Stats:
        """Jobs per status, mean run time, and today's users and jobs (days start at midnight UTC)."""
        today = self._db.today()
        async with self._db.transaction(write=False) as tx:
            rows = await tx.fetchall("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
            mean = await tx.fetchone(
                "SELECT AVG(finished_at - started_at) FROM jobs WHERE status IN ('done', 'delivered')"
                " AND started_at IS NOT NULL AND finished_at IS NOT NULL"
            )
            users = await tx.fetchone("SELECT COUNT(*) FROM users WHERE last_seen >= ?", (today,))
            jobs = await tx.fetchone("SELECT COUNT(*) FROM jobs WHERE created_at >= ?", (today,))
        assert mean is not None
        assert users is not None
        assert jobs is not None
        counts = dict.fromkeys(JobStatus, 0) | {JobStatus(row["status"]): row["n"] for row in rows}
        return Stats(
            jobs_by_status=MappingProxyType(counts),
            mean_duration=mean[0],
            users_today=users[0],
            jobs_today=jobs[0],
        )

    async def purge_files(self, grace: float = 3600.0) -> int:
        """Delete the files finished jobs no longer keep, and unused files; forget day-old uploads.

        A finished job keeps its results `retention_days` and its uploads `input_retention_days` after it
        finished. A file under uploads/, presets/ or results/ is unused when no unfinished or retained
        job, session or preset names it and it is older than `grace` seconds (so a file saved just
        before the row naming it is written survives). Returns how many files were deleted.
        """
        settings = await self.settings.get()
        now = self._db.clock()
        results_cutoff = now - settings.retention_days * DAY
        inputs_cutoff = now - settings.input_retention_days * DAY
        async with self._db.transaction() as tx:
            expired = await tx.fetchall(
                "UPDATE jobs SET result_path = NULL WHERE result_path IS NOT NULL"
                " AND status IN ('delivered', 'failed', 'cancelled') AND finished_at < ? RETURNING id",
                (results_cutoff,),
            )
            jobs = await tx.fetchall(
                "SELECT content_path, style_paths FROM jobs"
                " WHERE status IN ('queued', 'running', 'done') OR finished_at >= ?",
                (inputs_cutoff,),
            )
            sessions = await tx.fetchall("SELECT content_path, style_path FROM sessions")
            presets = await tx.fetchall("SELECT image_path FROM presets")
            results = await tx.fetchall("SELECT result_path FROM jobs WHERE result_path IS NOT NULL")
        count = sum(self.files.remove_results(row["id"]) for row in expired)
        names = [row["image_path"] for row in presets] + [row["result_path"] for row in results]
        names += [path for row in sessions for path in (row["content_path"], row["style_path"]) if path]
        for row in jobs:
            names.append(row["content_path"])
            names.extend(json.loads(row["style_paths"]))
        # Rows may name files relative to another working directory, or through a symlink: compare the
        # files themselves, never the strings.
        used = {_identity(Path(name)) for name in names}
        unused = [
            path
            for path in self.files.managed_files()
            if _identity(path) not in used and path.stat().st_mtime < now - grace
        ]
        count += remove(unused)
        await self.users.forget_uploads(before=now - DAY)
        logger.info("Purged %d files", count)
        return count


def _identity(path: Path) -> Path:
    """The absolute, symlink-free path of a file, whatever directory the bot was started from."""
    return path.resolve()


class _Opening:
    """What `Store.open` returns: awaitable, and usable with `async with`."""

    def __init__(
        self, data_dir: Path, defaults: Settings, limits: Limits, clock: Clock, recover: bool
    ) -> None:
        self._args = (data_dir, defaults, limits, clock, recover)
        self._store: Store | None = None

    def __await__(self) -> Generator[Any, None, Store]:
        return self._open().__await__()

    async def __aenter__(self) -> Store:
        self._store = await self._open()
        return self._store

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._store is not None
        await self._store.close()

    async def _open(self) -> Store:
        data_dir, defaults, limits, clock, recover = self._args
        files = DataDir(data_dir)
        files.create()
        db = await Database.connect(files.db_path, clock)
        try:
            settings = SettingsStore(db, defaults, limits)
            await migrate(db, files.db_path)
            recovery = await Jobs(db).recover() if recover else RecoveryReport()
        except BaseException:
            await db.close()
            raise
        return Store(db, files, settings, recovery)
