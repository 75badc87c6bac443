"""Moves jobs from the store through the engine pool to the chat: claim, run, show progress, deliver.

The jobs table is the source of truth. The dispatcher keeps only job ids in memory, so a restart
resumes from the store: queued jobs run, results left undelivered are sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

from telegram import Bot

from bot.config import Config
from bot.delivery import Messenger
from bot.keyboards import cancel_keyboard
from bot.painting import preview_alpha, style_params
from engine.clips import is_clip
from engine.workers.jobs import EngineBackend, Failure, JobSpec, Outcome, ProgressEvent
from storage import Job, JobStatus, Store

logger = logging.getLogger(__name__)

# How often the loop looks at the store even when nobody woke it (a job submitted by another process).
POLL_SECONDS = 2.0
HOUSEKEEPING_SECONDS = 600.0
# At shutdown a delivery already on its way gets this long to finish and be recorded; cutting it off
# between Telegram's answer and the store's commit would send the picture twice after the restart.
DELIVERY_GRACE_SECONDS = 15.0
SESSION_MAX_IDLE = 24 * 3600.0
# Recording a job's outcome is retried while the database cannot be written, waiting up to this long.
STORE_RETRY_FIRST_SECONDS = 1.0
STORE_RETRY_MAX_SECONDS = 60.0


@dataclass
class _Running:
    job: Job
    pool: EngineBackend  # the pool running it: the preview worker for fast jobs
    task: asyncio.Task[None] | None = None
    latest: ProgressEvent | None = None
    last_text: str | None = None
    last_edit: float = 0.0
    cancelled: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class Dispatcher:
    """Runs as many jobs at once as the pool has workers; everything else waits in the store."""

    def __init__(
        self,
        bot: Bot,
        store: Store,
        pool: EngineBackend,
        config: Config,
        previews: EngineBackend | None = None,
    ) -> None:
        self.bot = bot
        self.store = store
        self.pool = pool
        self.config = config
        self.previews = previews  # a pool of its own for instant previews; None when they are off
        self.messenger = Messenger(bot, store)
        self._running: dict[int, _Running] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # previews
        self._deliveries: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Start the loop on the running event loop; a worker becoming ready wakes it."""
        loop = asyncio.get_running_loop()

        def ready() -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the bot has stopped
                loop.call_soon_threadsafe(self.wake)

        for pool in (self.pool, self.previews):
            if pool is not None:
                pool.on_ready = ready
        self._task = asyncio.create_task(self._loop(), name="dispatcher")

    def wake(self) -> None:
        """Look at the queue now (a job was submitted or a worker freed)."""
        self._wake.set()

    def preview(self, job: Job) -> None:
        """Send an instant AdaIN preview of a just-queued job, without waiting for the queue."""
        if self.previews is not None:
            self._spawn(self._preview(job), f"preview-{job.id}")

    async def _preview(self, job: Job) -> None:
        assert self.previews is not None
        params = style_params(job.request, self.config.engine_choices)
        output = self.store.files.preview_path(job.id)
        alpha = preview_alpha(job.request)
        spec = JobSpec(
            f"{job.id}-preview", job.content_path, job.style_paths, output, params, "preview", alpha
        )
        outcome = await self.previews.submit_async(spec).wait()
        if outcome.status != "done" or outcome.output is None:
            logger.info("job %d: no preview (%s)", job.id, outcome.detail or outcome.status)
            return
        data = await asyncio.to_thread(outcome.output.read_bytes)
        texts = await self.messenger.texts(job)
        await self.messenger.show_preview(job, data, texts.preview, cancel_keyboard(job.id, texts))

    def lane(self, fast: bool) -> EngineBackend:
        """The workers of a lane: fast jobs run on the preview worker, the rest on the pool."""
        return self.previews if fast and self.previews is not None else self.pool

    async def cancel(self, job_id: int) -> bool:
        """Cancel a queued or running job; False if it had already ended."""
        if not await self.store.jobs.cancel(job_id):
            return False
        running = self._running.get(job_id)
        if running is not None:
            running.cancelled = True
            running.pool.cancel(str(job_id))
        return True

    async def stop(self) -> None:
        """Stop claiming, put running jobs back in the queue, and let deliveries under way finish.

        A delivery still retrying after DELIVERY_GRACE_SECONDS is cut off; its result stays `done`
        in the store and goes out at the next start.
        """
        self._stopping = True
        self._wake.set()
        for job_id, running in list(self._running.items()):
            running.pool.cancel(str(job_id))
            try:
                await self.store.jobs.release(job_id)
            except (sqlite3.Error, OSError) as exc:
                # Left `running`: the next start queues it again.
                logger.warning("job %d: not released (%s)", job_id, exc)
        tasks = [r.task for r in self._running.values() if r.task is not None]
        if self._task is not None:
            tasks.append(self._task)
        tasks += list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        deliveries = list(self._deliveries)
        if deliveries:
            _, late = await asyncio.wait(deliveries, timeout=DELIVERY_GRACE_SECONDS)
            for task in late:
                task.cancel()
            await asyncio.gather(*deliveries, return_exceptions=True)

    async def _loop(self) -> None:
        for job in self.store.recovery.failed:
            texts = await self.messenger.texts(job)
            lost = Outcome.failed(str(job.id), Failure.WORKER_DIED, "out of attempts at a restart")
            self._spawn(self.messenger.report(job, texts.job_failed(lost)), f"report-{job.id}")
        for job in self.store.recovery.undelivered:
            self._spawn_delivery(job)
        housekeeping = 0.0
        while not self._stopping:
            self._wake.clear()
            try:
                for fast in (False, True):
                    await self._claim(fast)
                if time.monotonic() - housekeeping > HOUSEKEEPING_SECONDS:
                    housekeeping = time.monotonic()
                    await self.store.sessions.expire(SESSION_MAX_IDLE)
                    await self.store.purge_files()
            except Exception:
                logger.exception("dispatcher loop failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)

    async def _claim(self, fast: bool) -> None:
        """Start queued jobs of a lane while its pool has a ready worker without a job; a worker that cannot
        start holds no job meanwhile."""
        pool = self.lane(fast)
        while not self._stopping:
            if sum(r.pool is pool for r in self._running.values()) >= pool.ready:
                return
            claimed = await self.store.jobs.claim_next(fast=fast)
            if claimed is None:
                return
            running = _Running(claimed, pool)
            self._running[claimed.id] = running
            running.task = asyncio.create_task(self._run(running), name=f"job-{claimed.id}")

    async def _run(self, running: _Running) -> None:
        job = running.job
        try:
            try:
                outcome = await self._execute(running)
            except Exception as exc:
                logger.exception("job %d: dispatcher failed", job.id)
                outcome = Outcome.failed(str(job.id), Failure.INTERNAL, f"dispatcher: {exc!r}")
            await self._settle(job, outcome)
        finally:
            self._running.pop(job.id, None)
            self.wake()

    async def _settle(self, job: Job, outcome: Outcome) -> None:
        """Record how the job ended, retrying while the database cannot be written (a full disk).

        The job stays `running` meanwhile, and its result file stays on disk; a stop in between leaves it
        `running`, which the next start queues again.
        """
        delay = STORE_RETRY_FIRST_SECONDS
        while True:
            try:
                await self._conclude(job, outcome)
                return
            except (sqlite3.Error, OSError) as exc:
                logger.error(
                    "job %d: its outcome could not be recorded (%s); again in %.0f s", job.id, exc, delay
                )
            except Exception:
                logger.exception(
                    "job %d: its outcome could not be handled; the next start runs it again", job.id
                )
                return
            await asyncio.sleep(delay)
            delay = min(STORE_RETRY_MAX_SECONDS, delay * 2)

    async def _execute(self, running: _Running) -> Outcome:
        job = running.job
        logger.info("job %d: running (%d iterations)", job.id, job.iterations)
        try:
            params = style_params(job.request, self.config.engine_choices)
        except (TypeError, ValueError) as exc:
            return Outcome.failed(str(job.id), Failure.INVALID_SETTINGS, str(exc))
        # A fast job is its preview: one feed-forward pass instead of the optimisation (for a clip, one
        # per frame); a clip's result is an MP4.
        mode: Literal["stylize", "preview"] = "preview" if job.request.fast else "stylize"
        suffix = ".mp4" if is_clip(job.content_path) else ".jpg" if mode == "preview" else ".png"
        output = self.store.files.result_path(job.id, suffix)
        alpha = preview_alpha(job.request)
        spec = JobSpec(str(job.id), job.content_path, job.style_paths, output, params, mode, alpha)

        def on_progress(event: ProgressEvent) -> None:
            running.latest = event
            running.changed.set()

        handle = running.pool.submit_async(spec, on_progress)
        reporter = asyncio.create_task(self._report_progress(running))
        try:
            return await handle.wait()
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter

    async def _report_progress(self, running: _Running) -> None:
        """Edit the status message at most once per interval, never with the same text twice."""
        interval = self.config.progress_interval
        texts = await self.messenger.texts(running.job)
        while True:
            await running.changed.wait()
            running.changed.clear()
            wait = running.last_edit + interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            event = running.latest
            if event is None:
                continue
            try:
                still_running = await self.store.jobs.update_progress(
                    running.job.id, event.iteration, event.total
                )
            except Exception as exc:
                # Progress is cosmetic: a busy or failing database must not touch the job's outcome.
                logger.warning("job %d: progress not recorded: %s", running.job.id, exc)
                continue
            if not still_running:
                # Cancelled in the store behind our back (another process, an admin tool): stop the worker.
                running.pool.cancel(str(running.job.id))
                return
            text = texts.progress(
                event.iteration,
                event.total,
                scale=(event.scale, event.scales, event.side),
                frame=(event.frame, event.frames),
            )
            if text == running.last_text:
                continue
            running.last_edit = time.monotonic()
            running.last_text = text
            markup = cancel_keyboard(running.job.id, texts)
            await self.messenger.show_status(running.job, text, markup, progress=True)

    async def _conclude(self, job: Job, outcome: Outcome) -> None:
        if outcome.status == "done" and outcome.output is not None:
            if await self.store.jobs.finish(job.id, outcome.output, outcome.shrunk_to):
                logger.info("job %d: done in %.1f s", job.id, outcome.seconds)
            # Looked up even when `finish` found it done: an earlier try may have got that far.
            done = await self.store.jobs.get(job.id)
            if done is not None and done.status == JobStatus.DONE:
                self._spawn_delivery(done)  # the worker takes the next job meanwhile
            return
        texts = await self.messenger.texts(job)
        if outcome.status == "cancelled":
            if self._stopping:
                return
            await self.store.jobs.cancel(job.id)
            await self.messenger.show_status(job, texts.cancelled())
            return
        logger.warning("job %d: failed: %s (%s)", job.id, outcome.failure, outcome.detail)
        if outcome.crashed:
            again = await self.store.jobs.requeue(job.id, outcome.detail or "worker died")
            if again is not None and again.status == JobStatus.QUEUED:
                await self.messenger.show_status(job, texts.retrying, cancel_keyboard(job.id, texts))
                return
        else:
            await self.store.jobs.fail(job.id, outcome.detail or str(outcome.failure))
        text = texts.job_failed(outcome)
        await self.messenger.report(job, text)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _spawn_delivery(self, job: Job) -> None:
        task = asyncio.create_task(self._deliver_safely(job), name=f"deliver-{job.id}")
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _deliver_safely(self, job: Job) -> None:
        try:
            await self.messenger.deliver(job)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The result stays `done` in the store and is sent again at the next start.
            logger.exception("job %d: delivery failed", job.id)
        self.wake()  # a lost result goes back in the queue
