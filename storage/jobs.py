"""The durable job queue and its history."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from storage.db import Database, Transaction
from storage.models import MAX_ATTEMPTS, Job, JobRequest, JobStatus, QueuePosition, RecoveryReport
from storage.sessions import CLEAR_INPUTS

logger = logging.getLogger(__name__)

RECENT_JOBS = 20
"""How many finished jobs the time estimate averages over."""

_ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
# SQL for what is left of a running job's work: its share of iterations not yet done (all before the first).
_LEFT = (
    "(CASE WHEN progress_total > 0 THEN work * MAX(progress_total - progress, 0) / progress_total"
    " ELSE work END)"
)


def _lane(table: str = "jobs") -> str:
    """SQL for a job's lane: 1 for fast jobs (one feed-forward pass), 0 for optimisations."""
    return f"{table}.fast"


class Jobs:
    """Submit, claim, progress, finish, deliver, fail, cancel and requeue jobs."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def submit(
        self,
        chat_id: int,
        user_id: int,
        content_path: Path,
        style_paths: Sequence[Path],
        request: JobRequest,
        *,
        content_size: tuple[int, int] | None = None,
        handled_update: int | None = None,
        work: float,
        held: bool = False,
    ) -> Job:
        """Queue a job that is to make what `request` says.

        `content_size` is the photo's upright (width, height); `work` the job's cost in the bot's unit,
        by which wait estimates share out the time recent jobs took (see `queue_position`). A `held`
        job is not claimed until `open` records its status message, so the bot can send that message
        knowing the job's id and the dispatcher never starts a job whose chat does not show it yet;
        `recover` opens what a crash left held.

        In the same transaction the chat's session forgets the photos the job took, and the inbox
        forgets `handled_update` (the message that completed the job): a crash leaves either all of it
        or none, never a job whose photos would pair again or whose message would make a second job.
        """
        if not style_paths:
            raise ValueError("a job needs at least one style image")
        now = self._db.clock()
        async with self._db.transaction() as tx:
            job_id = await tx.insert(
                "INSERT INTO jobs (chat_id, user_id, content_path, style_paths, iterations, max_size,"
                " optimizer, initial, margin, preserve_colors, style_strength, fast, brush, work, created_at,"
                " intake_pending, content_width, content_height)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    chat_id,
                    user_id,
                    str(content_path),
                    json.dumps([str(path) for path in style_paths]),
                    request.iterations,
                    request.max_size,
                    request.optimizer,
                    request.initial,
                    request.margin,
                    int(request.preserve_colors),
                    float(request.style_strength),
                    int(request.fast),
                    request.brush,
                    work,
                    now,
                    int(held),
                    *(content_size or (None, None)),
                ),
            )
            await tx.execute(
                "INSERT INTO users (user_id, first_seen, last_seen) VALUES (?, ?, ?)"
                " ON CONFLICT (user_id) DO UPDATE SET last_seen = excluded.last_seen",
                (user_id, now, now),
            )
            await tx.execute(
                f"UPDATE sessions SET {CLEAR_INPUTS}, updated_at = ? WHERE chat_id = ?", (now, chat_id)
            )
            if handled_update is not None:
                await tx.execute("DELETE FROM inbox WHERE update_id = ?", (handled_update,))
            row = await tx.fetchone("SELECT * FROM jobs WHERE id = ?", (job_id,))
        assert row is not None
        logger.debug("job %d: queued for chat %d", job_id, chat_id)
        return _job(row)

    async def open(self, job_id: int, status_message_id: int | None) -> Job:
        """Record the job's status message (None: it could not be sent) and let the dispatcher claim it."""
        row = await self._db.fetchone(
            "UPDATE jobs SET status_message_id = ?, intake_pending = 0 WHERE id = ? RETURNING *",
            (status_message_id, job_id),
        )
        if row is None:
            raise KeyError(job_id)
        return _job(row)

    async def claim_next(self, fast: bool = False) -> Job | None:
        """Atomically move the next queued job to `running` and return it, or None if none waits.

        Fast jobs (`JobRequest.fast`: one feed-forward pass) and optimisations are two lanes, each claimed
        on its own, so a one-second job never waits behind a minutes-long one. Within a lane FIFO,
        except that users with fewer running jobs go first, so nobody runs two jobs while someone
        else waits.
        """
        row = await self._db.fetchone(
            "UPDATE jobs SET status = 'running', started_at = ?, progress = 0, progress_total = iterations"
            " WHERE id = (SELECT q.id FROM jobs q WHERE q.status = 'queued' AND q.intake_pending = 0"
            f" AND {_lane('q')} = ? ORDER BY"
            " (SELECT COUNT(*) FROM jobs r WHERE r.user_id = q.user_id AND r.status = 'running'), q.id"
            " LIMIT 1) AND status = 'queued' RETURNING *",
            (self._db.clock(), int(fast)),
        )
        if row is None:
            return None
        logger.debug("job %d: claimed", row["id"])
        return _job(row)

    async def update_progress(self, job_id: int, iteration: int, total: int) -> bool:
        """Record progress; False when the job is no longer running (cancelled: stop the worker)."""
        rows = await self._db.fetchall(
            "UPDATE jobs SET progress = ?, progress_total = ? WHERE id = ? AND status = 'running'"
            " RETURNING id",
            (iteration, total, job_id),
        )
        return bool(rows)

    async def set_preview_message(self, job_id: int, message_id: int) -> None:
        """Remember the id of the photo message that shows the job's instant preview."""
        await self._db.fetchall("UPDATE jobs SET preview_message_id = ? WHERE id = ?", (message_id, job_id))

    async def finish(self, job_id: int, result_path: Path, shrunk_to: int | None = None) -> bool:
        """`running → done` with the result's path (and the long side painted, if memory made it smaller
        than asked); False if the job was not running."""
        changed = await self._transition(
            job_id,
            (JobStatus.RUNNING,),
            JobStatus.DONE,
            "result_path = ?, shrunk_to = ?, finished_at = ?, progress = progress_total, error = NULL",
            (str(result_path), shrunk_to, self._db.clock()),
        )
        if changed:
            logger.debug("job %d: done", job_id)
        return changed

    async def mark_delivered(self, job_id: int) -> bool:
        """`done → delivered`; False if the job was not done."""
        return await self._transition(
            job_id, (JobStatus.DONE,), JobStatus.DELIVERED, "delivered_at = ?", (self._db.clock(),)
        )

    async def fail(self, job_id: int, error: str) -> bool:
        """`queued | running | done → failed` with the error text; False if already final."""
        changed = await self._transition(
            job_id,
            (*_ACTIVE, JobStatus.DONE),
            JobStatus.FAILED,
            "error = ?, finished_at = ?",
            (error, self._db.clock()),
        )
        if changed:
            logger.debug("job %d: failed: %s", job_id, error)
        return changed

    async def cancel(self, job_id: int) -> bool:
        """`queued | running → cancelled`; False if the job was neither.

        A running job's worker learns it from `update_progress` returning False.
        """
        changed = await self._transition(
            job_id, _ACTIVE, JobStatus.CANCELLED, "finished_at = ?", (self._db.clock(),)
        )
        if changed:
            logger.debug("job %d: cancelled", job_id)
        return changed

    async def requeue(self, job_id: int, error: str) -> Job | None:
        """After a worker died: back to `queued` (attempts + 1), or `failed` after too many attempts.

        Returns the job as it is now, or None if it was not running.
        """
        return await self._again(job_id, JobStatus.RUNNING, error)

    async def repaint(self, job_id: int, error: str) -> Job | None:
        """A done job whose result cannot be delivered (lost, unreadable): back to `queued` to be painted
        again (attempts + 1), or `failed` after too many attempts. Returns the job as it is now, or None
        if it was not done."""
        return await self._again(job_id, JobStatus.DONE, error)

    async def _again(self, job_id: int, source: JobStatus, error: str) -> Job | None:
        """A `source` job queued again with one more attempt, or failed without one left; None if it was
        not `source`."""
        async with self._db.transaction() as tx:
            requeued, failed = await _requeue(
                tx, self._db.clock(), "id = ? AND status = ?", (job_id, source), error
            )
            row = await tx.fetchone("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if not (requeued or failed) or row is None:
            return None
        logger.debug("job %d: %s was %s; %s", job_id, error, source, "failed" if failed else "queued")
        return _job(row)

    async def release(self, job_id: int) -> bool:
        """`running → queued` without counting an attempt, for a clean shutdown; False if not running."""
        changed = await self._transition(
            job_id, (JobStatus.RUNNING,), JobStatus.QUEUED, "progress = 0, started_at = NULL", ()
        )
        if changed:
            logger.debug("job %d: released for the next start", job_id)
        return changed

    async def get(self, job_id: int) -> Job | None:
        """The job with this id, if any."""
        row = await self._db.fetchone("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _job(row) if row is not None else None

    async def active_for_chat(self, chat_id: int) -> list[Job]:
        """The chat's queued, running and done-but-undelivered jobs, oldest first."""
        rows = await self._db.fetchall(
            "SELECT * FROM jobs WHERE chat_id = ? AND status IN ('queued', 'running', 'done') ORDER BY id",
            (chat_id,),
        )
        return [_job(row) for row in rows]

    async def queue_position(
        self, job_id: int, workers: int = 1, pace: float | None = None
    ) -> QueuePosition | None:
        """Where a queued job stands in its lane, with an estimate from recent jobs of that lane.

        The time recent jobs of the lane took per unit of their `work`, times the work ahead of this job
        and its own, shared by the lane's `workers`. Fast jobs and optimisations are separate lanes
        (see `claim_next`) and never count in each other's estimate. `pace` is the seconds per unit of
        work to reckon with while the lane has no finished job (the caller's measure; None: no estimate).
        """
        async with self._db.transaction(write=False) as tx:
            job = await tx.fetchone(
                f"SELECT id, work, {_lane()} AS lane FROM jobs WHERE id = ? AND status = 'queued'",
                (job_id,),
            )
            if job is None:
                return None
            lane = job["lane"]
            ahead = await tx.fetchone(
                f"SELECT COUNT(*), TOTAL(work) FROM jobs WHERE status = 'queued' AND id < ?"
                f" AND {_lane()} = ?",
                (job_id, lane),
            )
            running = await tx.fetchone(
                f"SELECT COUNT(*), TOTAL({_LEFT}) FROM jobs WHERE status = 'running' AND {_lane()} = ?",
                (lane,),
            )
            recent = await tx.fetchone(
                f"SELECT TOTAL(finished_at - started_at), TOTAL(work)"
                " FROM (SELECT * FROM jobs WHERE status IN ('done', 'delivered') AND started_at IS NOT NULL"
                f" AND finished_at IS NOT NULL AND {_lane()} = ?"
                " ORDER BY finished_at DESC LIMIT ?)",
                (lane, RECENT_JOBS),
            )
        assert ahead is not None
        assert running is not None
        assert recent is not None
        if recent[1] > 0:
            pace = recent[0] / recent[1]
        estimate = None
        if pace is not None:
            work = ahead[1] + running[1] + job["work"]
            estimate = work * pace / max(workers, 1)
        return QueuePosition(position=ahead[0] + 1, running=running[0], estimate=estimate)

    async def recover(self) -> RecoveryReport:
        """Requeue jobs a crash left running, open those it left in intake, and list done jobs still to
        deliver and jobs just failed for running out of attempts (their chats are still to be told)."""
        async with self._db.transaction() as tx:
            requeued, failed = await _requeue(
                tx, self._db.clock(), "status = 'running'", (), "interrupted by a restart"
            )
            # Whether its status message went out is unknown: the result comes as a message of its own.
            await tx.execute("UPDATE jobs SET intake_pending = 0 WHERE intake_pending = 1")
            rows = await tx.fetchall("SELECT * FROM jobs WHERE status = 'done' ORDER BY id")
            marks = ", ".join("?" for _ in failed)
            lost = await tx.fetchall(f"SELECT * FROM jobs WHERE id IN ({marks}) ORDER BY id", failed)
        for job_id in requeued:
            logger.warning("job %d: was running at shutdown; queued again", job_id)
        for job_id in failed:
            logger.warning("job %d: was running at shutdown and is out of attempts; failed", job_id)
        return RecoveryReport(
            requeued=requeued,
            failed=tuple(_job(row) for row in lost),
            undelivered=tuple(_job(row) for row in rows),
        )

    async def _transition(
        self,
        job_id: int,
        sources: Sequence[JobStatus],
        target: JobStatus,
        assignments: str,
        params: tuple[object, ...],
    ) -> bool:
        marks = ", ".join("?" for _ in sources)
        rows = await self._db.fetchall(
            f"UPDATE jobs SET status = ?, {assignments} WHERE id = ? AND status IN ({marks}) RETURNING id",
            (target, *params, job_id, *sources),
        )
        return bool(rows)


async def _requeue(
    tx: Transaction, now: float, where: str, params: tuple[object, ...], error: str
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Requeue the jobs matching `where`, or fail those out of attempts; return both id lists."""
    rows = await tx.fetchall(
        "UPDATE jobs SET attempts = attempts + 1, error = ?, progress = 0, result_path = NULL,"
        " status = CASE WHEN attempts + 1 >= ? THEN 'failed' ELSE 'queued' END,"
        " finished_at = CASE WHEN attempts + 1 >= ? THEN ? ELSE NULL END,"
        f" started_at = NULL WHERE {where} RETURNING id, status",
        (error, MAX_ATTEMPTS, MAX_ATTEMPTS, now, *params),
    )
    requeued = tuple(sorted(row["id"] for row in rows if row["status"] == JobStatus.QUEUED))
    failed = tuple(sorted(row["id"] for row in rows if row["status"] == JobStatus.FAILED))
    return requeued, failed


def _job(row: sqlite3.Row) -> Job:
    result = row["result_path"]
    width, height = row["content_width"], row["content_height"]
    return Job(
        id=row["id"],
        chat_id=row["chat_id"],
        user_id=row["user_id"],
        status=JobStatus(row["status"]),
        content_path=Path(row["content_path"]),
        style_paths=tuple(Path(path) for path in json.loads(row["style_paths"])),
        request=JobRequest(
            iterations=row["iterations"],
            max_size=row["max_size"],
            optimizer=row["optimizer"],
            initial=row["initial"],
            margin=row["margin"],
            preserve_colors=bool(row["preserve_colors"]),
            style_strength=row["style_strength"],
            fast=bool(row["fast"]),
            brush=row["brush"],
        ),
        progress=row["progress"],
        progress_total=row["progress_total"],
        status_message_id=row["status_message_id"],
        preview_message_id=row["preview_message_id"],
        content_size=(width, height) if width and height else None,
        shrunk_to=row["shrunk_to"],
        attempts=row["attempts"],
        error=row["error"],
        result_path=Path(result) if result is not None else None,
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        delivered_at=row["delivered_at"],
    )
