"""What every engine pool shares: the queue of jobs no worker has yet, and the one failure policy.

A worker that cannot start fails no job: queued jobs go to the workers that are ready, or wait while the
pool tries that worker again, ever less often (`start_backoff`); `ready`, `healthy` and `start_error` say
how many work and what is wrong meanwhile. A worker that dies under a
job fails that job alone, as `crashed`, so that the caller's store, the source of truth, may run it again.
`LocalPool` (local processes) and `RayPool` (Ray actors) are the two kinds of worker behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from engine.params import StyleParams
from engine.workers.jobs import Failure, JobHandle, JobSpec, Outcome, Pace, ProgressCallback, ProgressEvent

__all__ = ["START_BACKOFF", "QueuedJob", "QueuedPool", "existing_weights"]

logger = logging.getLogger(__name__)

# Seconds to wait before starting a worker again after failed starts in a row: the first wait, doubled
# after each further failure, up to the second.
START_BACKOFF = (1.0, 60.0)


def existing_weights(path: Path) -> Path:
    """`path`, once it is known to be a file: a pool of workers that could never load it fails now."""
    if not path.is_file():
        raise FileNotFoundError(f"VGG-19 weights not found at {path}")
    return path


@dataclass
class QueuedJob:
    """A job inside a pool: its spec, whom to tell of its progress, and the future of its outcome."""

    seq: int  # unique in its pool; a worker is told to stop a job by this number
    spec: JobSpec
    on_progress: ProgressCallback | None
    future: Future[Outcome] = field(default_factory=Future)

    def report(self, event: ProgressEvent) -> None:
        """Pass on a progress event; a failing callback is logged, it never stops the job or the pool."""
        if self.on_progress is None:
            return
        try:
            self.on_progress(event)
        except Exception:
            logger.exception("job %s: progress callback failed", self.spec.job_id)

    def resolve(self, outcome: Outcome) -> None:
        """Set the outcome unless the caller already gave up on the future (cancelled it)."""
        if not self.future.done():
            with contextlib.suppress(InvalidStateError):
                self.future.set_result(outcome)


class QueuedPool:
    """What every engine pool shares: the queue of jobs no worker has yet, how they are submitted, cancelled
    and counted, and the failure policy. A worker that cannot start fails no job: its replacement is tried
    after a wait that doubles with each failure of that worker in a row (`start_backoff`), the other
    workers run the queue meanwhile, and `ready`/`healthy`/`start_error` tell how it stands. A worker that
    dies under a job fails that job alone, as `crashed` (`_crashed`).

    A subclass starts its workers, reports each start to `_worker_started` or `_start_failed`, counts
    its `ready` workers, hands them queued jobs when `_kick`ed, and stops a running job in `_stop_running`.
    """

    size: int  # how many jobs run at once
    worker_noun = "worker"  # what the log calls one of its workers

    def __init__(self, start_backoff: tuple[float, float] = START_BACKOFF) -> None:
        first, cap = start_backoff
        if not 0 < first <= cap:
            raise ValueError(f"start_backoff must be (first, cap) with 0 < first <= cap, not {start_backoff}")
        self.start_backoff = start_backoff
        self._lock = threading.Lock()
        self._pending: deque[QueuedJob] = deque()
        self._jobs: dict[str, QueuedJob] = {}  # queued and running, by job id
        self._seq = itertools.count(1)
        self._closing = False
        self._closed = threading.Event()  # set with `_closing`, for threads that wait to try a start again
        self._start_failures = 0  # since the pool began
        self._failures_in_row: dict[int, int] = {}  # by worker index: failed starts since it last started
        self._failing: dict[int, str] = {}  # by worker index, latest last: why it failed, until it starts
        # Called, on one of the pool's threads, each time a worker becomes ready to take a job.
        self.on_ready: Callable[[], None] | None = None
        # A job each worker times as it starts (None: none), and the first worker's measure; `close`
        # cancels the future if none came.
        self.probe: StyleParams | None = None
        self.paced: Future[Pace] = Future()

    def start(self) -> Self:
        raise NotImplementedError

    def close(self, timeout: float = 10.0) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def ready(self) -> int:
        """How many workers are ready now, busy or idle: the most jobs the pool can run at this moment."""
        raise NotImplementedError

    @property
    def healthy(self) -> bool:
        """False while no worker is ready and the last try to start one failed: queued jobs then wait."""
        ready = self.ready
        with self._lock:
            return ready > 0 or not self._failing

    @property
    def pace(self) -> Pace | None:
        """How fast the first worker to measure paints (its probe as it started); None until then."""
        return self.paced.result() if self.paced.done() and not self.paced.cancelled() else None

    @property
    def start_error(self) -> str | None:
        """Why a worker that has not started since failed its latest start; None if none is failing."""
        with self._lock:
            return next(reversed(self._failing.values()), None)

    @property
    def start_failures(self) -> int:
        """How many worker starts have failed since the pool began, one per failed start."""
        with self._lock:
            return self._start_failures

    def submit(self, spec: JobSpec, on_progress: ProgressCallback | None = None) -> JobHandle:
        """Queue a job; `on_progress` is called on one of the pool's threads after each iteration."""
        job = QueuedJob(next(self._seq), spec, on_progress)
        with self._lock:
            if self._closing:
                raise RuntimeError("the engine pool is closed")
            if spec.job_id in self._jobs:
                raise ValueError(f"job {spec.job_id} is already in the pool")
            self._jobs[spec.job_id] = job
            self._pending.append(job)
        self._kick()
        return JobHandle(self, spec.job_id, job.future)

    def submit_async(self, spec: JobSpec, on_progress: ProgressCallback | None = None) -> JobHandle:
        """Like `submit`, but `on_progress` runs on the calling thread's running event loop."""
        if on_progress is None:
            return self.submit(spec)
        loop = asyncio.get_running_loop()
        callback = on_progress

        def relay(event: ProgressEvent) -> None:
            loop.call_soon_threadsafe(callback, event)

        return self.submit(spec, relay)

    def cancel(self, job_id: str) -> bool:
        """Drop a queued job or stop a running one; False if the pool does not hold it."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return False
            if job in self._pending:
                self._pending.remove(job)
                del self._jobs[job_id]
                job.resolve(Outcome(job_id, "cancelled"))
                return True
        self._stop_running(job)
        return True

    def busy(self) -> int:
        """How many jobs are queued or running in the pool."""
        with self._lock:
            return len(self._jobs)

    def _probe_for_start(self) -> StyleParams | None:
        """What a starting worker is to probe: the pool's probe until one worker has measured its pace; a
        worker started again after a crash is not made to measure it again."""
        return None if self.paced.done() else self.probe

    def _mark_closing(self) -> None:
        """The pool is closing: no more jobs, no more starts, and no probe still to come; the caller holds
        the lock."""
        self._closing = True
        self._closed.set()
        self.paced.cancel()

    def _drop_pending(self, why: str) -> None:
        """Resolve every queued job as cancelled, `why` as its detail; the caller holds the lock."""
        while self._pending:
            job = self._pending.popleft()
            del self._jobs[job.spec.job_id]
            job.resolve(Outcome(job.spec.job_id, "cancelled", detail=why))

    def _measured(self, index: int, pace: Pace | None) -> None:
        """Worker `index` probed its pace as it started (None: it did not); the first is the pool's."""
        if pace is None:
            return
        logger.info(
            "engine %s %d paints %.3f s per iteration at 512 px in %s (%s)",
            self.worker_noun,
            index,
            pace.seconds,
            pace.precision,
            pace.why,
        )
        with contextlib.suppress(InvalidStateError):
            self.paced.set_result(pace)

    def _worker_started(self, index: int) -> None:
        """Worker `index` is ready: its failures are over, and its next one waits the shortest time."""
        with self._lock:
            self._failures_in_row.pop(index, None)
            self._failing.pop(index, None)
        if self.on_ready is not None:
            self.on_ready()

    def _start_failed(self, index: int, reason: str) -> float:
        """Count and log one failed start of worker `index`; the seconds to wait before trying it again."""
        first, cap = self.start_backoff
        with self._lock:
            self._start_failures += 1
            in_row = self._failures_in_row[index] = self._failures_in_row.get(index, 0) + 1
            self._failing.pop(index, None)
            self._failing[index] = reason  # the latest last
            delay = min(cap, first * 2 ** min(in_row - 1, 32))
        logger.error(
            "engine %s %d failed to start: %s (next try in %g s)", self.worker_noun, index, reason, delay
        )
        return delay

    def _crashed(self, job: QueuedJob, worker: str, what: str) -> Outcome:
        """The outcome of a job whose worker died under it (`worker` names it, `what` says how): failed,
        but `crashed`, so the caller's store may run it again.
        """
        logger.error("job %s: %s %s", job.spec.job_id, worker, what)
        return Outcome.failed(job.spec.job_id, Failure.WORKER_DIED, f"{worker} {what}", crashed=True)

    def _kick(self) -> None:
        """A job was queued: hand it to an idle worker when there is one."""
        raise NotImplementedError

    def _stop_running(self, job: QueuedJob) -> None:
        """Ask the worker running `job` to stop between two iterations."""
        raise NotImplementedError
