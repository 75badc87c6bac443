"""Moves jobs from the store through the engine pool to the chat: claim, run, show progress, deliver.

The jobs table is the source of truth. The dispatcher keeps only job ids in memory, so a restart
resumes from the store: queued jobs run, results left undelivered are sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputMediaDocument, InputMediaPhoto
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot import texts
from bot.config import Config
from engine.params import StyleParams
from engine.pool import EngineBackend, EnginePool, JobSpec, Outcome, ProgressEvent
from storage import Job, JobStatus, Store

logger = logging.getLogger(__name__)

# Telegram's limits for a photo; anything beyond goes out as a document.
PHOTO_MAX_BYTES = 10 * 1024 * 1024
PHOTO_MAX_DIMENSIONS = 10_000
DELIVERY_ATTEMPTS = 5
# How often the loop looks at the store even when nobody woke it (a job submitted by another process).
POLL_SECONDS = 2.0
HOUSEKEEPING_SECONDS = 600.0
# At shutdown a delivery already on its way gets this long to finish and be recorded; cutting it off
# between Telegram's answer and the store's commit would send the picture twice after the restart.
DELIVERY_GRACE_SECONDS = 15.0
SESSION_MAX_IDLE = 24 * 3600.0


def cancel_keyboard(job_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("Cancel", callback_data=f"cancel:{job_id}")]])


@dataclass
class _Running:
    job: Job
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
        previews: EnginePool | None = None,
        adain_start: bool = False,
    ) -> None:
        self.bot = bot
        self.store = store
        self.pool = pool
        self.config = config
        self.previews = previews  # a pool of its own for instant previews; None when they are off
        # The workers hold the AdaIN decoder: jobs start from its image, which converges sooner.
        self.adain_start = adain_start
        self._running: dict[int, _Running] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # previews
        self._deliveries: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Start the loop on the running event loop."""
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
        params = _style_params(job)
        output = self.store.files.preview_path(job.id)
        spec = JobSpec(
            f"{job.id}-preview", job.content_path, job.style_paths, output, params, "preview", _alpha(job)
        )
        outcome = await self.previews.submit_async(spec).wait()
        if outcome.status != "done" or outcome.output is None:
            logger.info("job %d: no preview (%s)", job.id, outcome.detail or outcome.status)
            return
        current = await self.store.jobs.get(job.id)
        if current is None or current.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            return  # already painted, cancelled or failed: the preview would only confuse
        try:
            data = await asyncio.to_thread(outcome.output.read_bytes)
            message = await self.bot.send_photo(job.chat_id, photo=data, caption=texts.PREVIEW)
        except TelegramError as exc:
            logger.info("job %d: preview not sent: %s", job.id, exc)
            return
        await self.store.jobs.set_preview_message(job.id, message.message_id)

    async def cancel(self, job_id: int) -> bool:
        """Cancel a queued or running job; False if it had already ended."""
        if not await self.store.jobs.cancel(job_id):
            return False
        running = self._running.get(job_id)
        if running is not None:
            running.cancelled = True
            self.pool.cancel(str(job_id))
        return True

    async def stop(self) -> None:
        """Stop claiming, put running jobs back in the queue, and let deliveries under way finish.

        A delivery still retrying after DELIVERY_GRACE_SECONDS is cut off; its result stays `done`
        in the store and goes out at the next start.
        """
        self._stopping = True
        self._wake.set()
        for job_id in list(self._running):
            await self.store.jobs.release(job_id)
            self.pool.cancel(str(job_id))
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
        for job in self.store.recovery.undelivered:
            self._spawn_delivery(job)
        housekeeping = 0.0
        while not self._stopping:
            self._wake.clear()
            try:
                while len(self._running) < self.pool.size:
                    claimed = await self.store.jobs.claim_next()
                    if claimed is None:
                        break
                    running = _Running(claimed)
                    self._running[claimed.id] = running
                    running.task = asyncio.create_task(self._run(running), name=f"job-{claimed.id}")
                if time.monotonic() - housekeeping > HOUSEKEEPING_SECONDS:
                    housekeeping = time.monotonic()
                    await self.store.sessions.expire(SESSION_MAX_IDLE)
                    await self.store.purge_files()
            except Exception:
                logger.exception("dispatcher loop failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)

    async def _run(self, running: _Running) -> None:
        job = running.job
        try:
            outcome = await self._execute(running)
            await self._conclude(job, outcome)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("job %d: dispatcher failed", job.id)
            await self.store.jobs.fail(job.id, "internal error")
            await self._tell(job, texts.failed(None))
        finally:
            self._running.pop(job.id, None)
            self.wake()

    async def _execute(self, running: _Running) -> Outcome:
        job = running.job
        logger.info("job %d: running (%d iterations)", job.id, job.iterations)
        try:
            params = _style_params(job)
        except (TypeError, ValueError) as exc:
            return Outcome(str(job.id), "failed", error="its settings are invalid", detail=str(exc))
        # A fast job is its preview: one feed-forward pass instead of the optimisation.
        mode: Literal["stylize", "preview"] = "preview" if job.params.get("fast") else "stylize"
        output = self.store.files.result_path(job.id, ".jpg" if mode == "preview" else ".png")
        spec = JobSpec(str(job.id), job.content_path, job.style_paths, output, params, mode, _alpha(job))

        def on_progress(event: ProgressEvent) -> None:
            running.latest = event
            running.changed.set()

        handle = self.pool.submit_async(spec, on_progress)
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
        while True:
            await running.changed.wait()
            running.changed.clear()
            wait = running.last_edit + interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            event = running.latest
            if event is None:
                continue
            if not await self.store.jobs.update_progress(running.job.id, event.iteration, event.total):
                # Cancelled in the store behind our back (another process, an admin tool): stop the worker.
                self.pool.cancel(str(running.job.id))
                return
            text = texts.progress(event.iteration, event.total)
            if text == running.last_text:
                continue
            running.last_edit = time.monotonic()
            running.last_text = text
            await self._edit_status(running.job, text, cancel_keyboard(running.job.id))

    async def _conclude(self, job: Job, outcome: Outcome) -> None:
        if outcome.status == "done" and outcome.output is not None:
            if await self.store.jobs.finish(job.id, outcome.output):
                logger.info("job %d: done in %.1f s", job.id, outcome.seconds)
                done = await self.store.jobs.get(job.id)
                assert done is not None
                self._spawn_delivery(done)  # the worker takes the next job meanwhile
            return
        if outcome.status == "cancelled":
            if self._stopping:
                return
            await self.store.jobs.cancel(job.id)
            await self._edit_status(job, texts.CANCELLED, None)
            return
        logger.warning("job %d: failed: %s (%s)", job.id, outcome.error, outcome.detail)
        if outcome.crashed:
            again = await self.store.jobs.requeue(job.id, outcome.detail or "worker died")
            if again is not None and again.status == JobStatus.QUEUED:
                await self._edit_status(job, texts.RETRYING, cancel_keyboard(job.id))
                return
        else:
            await self.store.jobs.fail(job.id, outcome.detail or outcome.error or "failed")
        if not await self._edit_status(job, texts.failed(outcome.error), None):
            await self._tell(job, texts.failed(outcome.error))

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
            await self._deliver(job)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The result stays `done` in the store and is sent again at the next start.
            logger.exception("job %d: delivery failed", job.id)

    async def _deliver(self, job: Job) -> None:
        """Send the result, retrying network trouble with backoff; mark it delivered exactly once."""
        path = job.result_path
        if path is None or not path.is_file():
            await self.store.jobs.fail(job.id, "result file missing")
            await self._tell(job, texts.failed("the result was lost"))
            return
        seconds = (job.finished_at - job.started_at) if job.finished_at and job.started_at else None
        as_photo = _fits_photo(path)
        for attempt in range(DELIVERY_ATTEMPTS):
            try:
                await self._send(job, path, texts.done(seconds), as_photo)
            except BadRequest as exc:
                if not as_photo:
                    logger.error("job %d: result refused by Telegram: %s", job.id, exc)
                    await self.store.jobs.fail(job.id, f"delivery refused: {exc}")
                    return
                logger.info("job %d: photo refused (%s); sending as a document", job.id, exc)
                as_photo = False
                continue
            except Forbidden:
                logger.info("job %d: the user blocked the bot; closing the job", job.id)
                await self.store.jobs.fail(job.id, "the user blocked the bot")
                return
            except RetryAfter as exc:
                await asyncio.sleep(_seconds(exc.retry_after))
                continue
            except NetworkError as exc:
                logger.warning("job %d: delivery attempt %d failed: %s", job.id, attempt + 1, exc)
                await asyncio.sleep(min(30.0, 2.0**attempt))
                continue
            await self.store.jobs.mark_delivered(job.id)
            logger.info("job %d: delivered", job.id)
            await self._edit_status(job, texts.DELIVERED, None)
            return
        logger.error(
            "job %d: not delivered after %d attempts; will retry at next start", job.id, DELIVERY_ATTEMPTS
        )

    async def _send(self, job: Job, path: Path, caption: str, as_photo: bool) -> None:
        """Replace the job's preview with the result when there is one, else send it as a new message."""
        data = await asyncio.to_thread(path.read_bytes)
        if job.preview_message_id is not None:
            media = (
                InputMediaPhoto(data, caption=caption)
                if as_photo
                else InputMediaDocument(data, caption=caption, filename=path.name)
            )
            try:
                await self.bot.edit_message_media(
                    media, chat_id=job.chat_id, message_id=job.preview_message_id
                )
                return
            except BadRequest as exc:
                logger.info("job %d: preview not replaced (%s); sending the result anew", job.id, exc)
        if as_photo:
            await self.bot.send_photo(job.chat_id, photo=data, caption=caption)
        else:
            await self.bot.send_document(job.chat_id, document=data, filename=path.name, caption=caption)

    async def _edit_status(self, job: Job, text: str, markup: InlineKeyboardMarkup | None) -> bool:
        """Edit the job's status message, best effort; False if the chat does not show `text` now."""
        current = await self.store.jobs.get(job.id)
        message_id = current.status_message_id if current is not None else None
        if message_id is None:
            return False
        try:
            await self.bot.edit_message_text(
                text, chat_id=job.chat_id, message_id=message_id, reply_markup=markup
            )
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                return True
            logger.info("job %d: status edit refused: %s", job.id, exc)
            return False
        except TelegramError as exc:
            logger.info("job %d: status edit dropped: %s", job.id, exc)
            return False
        return True

    async def _tell(self, job: Job, text: str) -> None:
        try:
            await self.bot.send_message(job.chat_id, text)
        except TelegramError as exc:
            logger.info("job %d: could not tell the user: %s", job.id, exc)


def _style_params(job: Job) -> StyleParams:
    """The engine's parameters from a job's frozen ones (less the bot's own keys)."""
    return StyleParams().with_overrides(**{k: v for k, v in job.params.items() if k != "fast"})


def _alpha(job: Job) -> float:
    """AdaIN's style strength for a job's preview: weak styles blend in part of the photo."""
    strength = float(job.params.get("style_weight", StyleParams().style_weight)) / StyleParams().style_weight
    return min(1.0, 0.5 + 0.5 * strength)


def _fits_photo(path: Path) -> bool:
    from PIL import Image

    if path.stat().st_size > PHOTO_MAX_BYTES:
        return False
    with Image.open(path) as img:
        width, height = img.size
    return width + height <= PHOTO_MAX_DIMENSIONS and max(width, height) <= 20 * min(width, height)


def _seconds(value: object) -> float:
    total = getattr(value, "total_seconds", None)
    return float(total()) if callable(total) else float(value)  # type: ignore[arg-type]
