"""A pool of spawned worker processes that run stylisation jobs, each worker loading the weights once.

The parent never imports TensorFlow. One manager thread owns all worker pipes: it hands the next queued job
to an idle worker, relays progress, notices a worker that died (killed, out of memory) and fails only that
worker's job, then starts a fresh worker. Callbacks run on the manager thread; `submit_async` moves them onto
an asyncio loop so an event loop is never blocked.

Workers that cannot start (bad weights, say) never fail a job: queued jobs wait while the pool tries again,
ever less often (`start_backoff`), and `healthy` and `start_error` say what is wrong meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing as mp
import os
import shutil
import subprocess
import threading
import time
from collections import deque
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Protocol, Self

from engine.jobs import JobSpec, Outcome, ProgressCallback, ProgressEvent

__all__ = [
    "START_BACKOFF",
    "EngineBackend",
    "EnginePool",
    "JobHandle",
    "JobSpec",
    "Outcome",
    "ProgressCallback",
    "ProgressEvent",
    "QueuedJob",
    "QueuedPool",
    "detect_gpus",
]

logger = logging.getLogger(__name__)

# Seconds to wait before starting a worker again after failed starts in a row: the first wait, doubled
# after each further failure, up to the second.
START_BACKOFF = (1.0, 60.0)


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


@dataclass
class _Worker:
    index: int
    process: Any  # multiprocessing's SpawnProcess
    conn: Connection
    env: dict[str, str]
    cancel: Any  # shared int: the seq of the job this worker should stop (0 = none)
    ready: bool = False
    job: QueuedJob | None = None
    retry_in: float | None = None  # its start failed: seconds to wait before starting its replacement


class JobHandle:
    """A submitted job: its id, a future of its `Outcome`, and a way to cancel it."""

    def __init__(self, pool: EngineBackend, job: QueuedJob) -> None:
        self._pool = pool
        self._job = job
        self.job_id = job.spec.job_id
        self.future = job.future

    def cancel(self) -> bool:
        """Stop the job if it is queued or running; False if it had already ended."""
        return self._pool.cancel(self.job_id)

    def result(self, timeout: float | None = None) -> Outcome:
        """Block until the job ends."""
        return self.future.result(timeout)

    async def wait(self) -> Outcome:
        """Await the job's end without blocking the event loop."""
        return await asyncio.wrap_future(self.future)


class EngineBackend(Protocol):
    """What the bot needs from a pool of engine workers: `EnginePool`, or `engine.ray_pool.RayPool`."""

    size: int  # how many jobs run at once

    @property
    def healthy(self) -> bool: ...

    @property
    def start_error(self) -> str | None: ...

    def submit(self, spec: JobSpec, on_progress: ProgressCallback | None = None) -> JobHandle: ...

    def submit_async(self, spec: JobSpec, on_progress: ProgressCallback | None = None) -> JobHandle: ...

    def cancel(self, job_id: str) -> bool: ...

    def busy(self) -> int: ...

    def close(self, timeout: float = 10.0) -> None: ...


def detect_gpus() -> list[str]:
    """Visible CUDA device ids, without loading TensorFlow: CUDA_VISIBLE_DEVICES, else nvidia-smi."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in listing.splitlines() if line.strip()]


class QueuedPool:
    """What every engine pool shares: the queue of jobs no worker has yet, how they are submitted, cancelled
    and counted, and the failure policy. A worker that cannot start fails no job: its replacement is tried
    after a wait that doubles with each failure in a row (`start_backoff`), and `healthy`/`start_error` tell
    why meanwhile. A worker that dies under a job fails that job alone, as `crashed` (`_crashed`).

    A subclass starts its workers, reports each start to `_worker_started` or `_start_failed`, hands them
    queued jobs when `_kick`ed, and stops a running job in `_stop_running`.
    """

    size: int  # how many jobs run at once
    worker_noun = "worker"  # what the log calls one of its workers

    def __init__(
        self,
        weights_path: Path,
        decoder_path: Path | None,
        start_backoff: tuple[float, float] = START_BACKOFF,
    ) -> None:
        if not weights_path.is_file():
            raise FileNotFoundError(f"VGG-19 weights not found at {weights_path}")
        first, cap = start_backoff
        if not 0 < first <= cap:
            raise ValueError(f"start_backoff must be (first, cap) with 0 < first <= cap, not {start_backoff}")
        self.weights_path = weights_path
        self.decoder_path = decoder_path  # the AdaIN decoder, for "preview" jobs
        self.start_backoff = start_backoff
        self._lock = threading.Lock()
        self._pending: deque[QueuedJob] = deque()
        self._jobs: dict[str, QueuedJob] = {}  # queued and running, by job id
        self._seq = itertools.count(1)
        self._closing = False
        self._closed = threading.Event()  # set with `_closing`, for threads that wait to try a start again
        self._start_failures = 0  # since the pool began
        self._failures_in_row = 0  # since a worker last started
        self._start_error: str | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def close(self, timeout: float = 10.0) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def healthy(self) -> bool:
        """False while workers fail to start; queued jobs then wait for one that does."""
        with self._lock:
            return self._start_error is None

    @property
    def start_error(self) -> str | None:
        """Why the last try to start a worker failed; None once a worker has started (or none failed)."""
        with self._lock:
            return self._start_error

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
        return JobHandle(self, job)

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

    def _drop_pending(self, error: str) -> None:
        """Resolve every queued job as cancelled with `error`; the caller holds the lock."""
        while self._pending:
            job = self._pending.popleft()
            del self._jobs[job.spec.job_id]
            job.resolve(Outcome(job.spec.job_id, "cancelled", error=error))

    def _worker_started(self) -> None:
        """A worker is ready: the pool is healthy again, and the next failure waits the shortest time."""
        with self._lock:
            self._failures_in_row = 0
            self._start_error = None

    def _start_failed(self, index: int, reason: str) -> float:
        """Count and log one failed start of worker `index`; the seconds to wait before trying again."""
        first, cap = self.start_backoff
        with self._lock:
            self._start_failures += 1
            self._failures_in_row += 1
            self._start_error = reason
            delay = min(cap, first * 2 ** min(self._failures_in_row - 1, 32))
        logger.error(
            "engine %s %d failed to start: %s (next try in %g s)", self.worker_noun, index, reason, delay
        )
        return delay

    def _crashed(self, job: QueuedJob, worker: str, what: str) -> Outcome:
        """The outcome of a job whose worker died under it (`worker` names it, `what` says how): failed,
        but `crashed`, so the caller's store may run it again.
        """
        logger.error("job %s: %s %s", job.spec.job_id, worker, what)
        return Outcome(
            job.spec.job_id,
            "failed",
            error="the engine stopped while working on it (it may have run out of memory)",
            detail=f"{worker} {what}",
            crashed=True,
        )

    def _kick(self) -> None:
        """A job was queued: hand it to an idle worker when there is one."""
        raise NotImplementedError

    def _stop_running(self, job: QueuedJob) -> None:
        """Ask the worker running `job` to stop between two iterations."""
        raise NotImplementedError


class EnginePool(QueuedPool):
    """Run `JobSpec`s on `workers` processes (default: one per GPU, else 1)."""

    def __init__(
        self,
        weights_path: Path,
        workers: int | None = None,
        threads_per_worker: int | None = None,
        decoder_path: Path | None = None,
        start_backoff: tuple[float, float] = START_BACKOFF,
    ) -> None:
        super().__init__(weights_path, decoder_path, start_backoff)
        gpus = detect_gpus()
        self.size = workers or max(1, len(gpus))
        cpus = os.cpu_count() or 1
        self.threads = threads_per_worker or max(1, cpus // self.size)
        # Worker i is pinned to GPU i (round robin when there are more workers than GPUs); none on CPU.
        self._envs = [
            {"CUDA_VISIBLE_DEVICES": gpus[i % len(gpus)] if gpus else "-1"} for i in range(self.size)
        ]
        self._ctx = mp.get_context("spawn")
        self._workers: list[_Worker] = []  # the live ones, by index; a slot waiting to start again has none
        self._retry_at: dict[int, float] = {}  # slot index -> time.monotonic() to start its worker again
        self._wake_r, self._wake_w = self._ctx.Pipe(duplex=False)
        self._thread: threading.Thread | None = None

    def start(self) -> EnginePool:
        """Spawn the workers and the manager thread; returns at once (workers load in the background)."""
        for index in range(self.size):
            self._start_worker(index)
        self._thread = threading.Thread(target=self._manage, name="engine-pool", daemon=True)
        self._thread.start()
        return self

    def _kick(self) -> None:
        self._wake()

    def _stop_running(self, job: QueuedJob) -> None:
        with self._lock:
            for worker in self._workers:
                if worker.job is job:
                    worker.cancel.value = job.seq

    def close(self, timeout: float = 10.0) -> None:
        """Cancel what is left, stop the workers and the manager thread."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._closed.set()
            self._drop_pending("the engine is shutting down")
            for worker in self._workers:
                if worker.job is not None:
                    worker.cancel.value = worker.job.seq
        deadline = time.monotonic() + timeout
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.process.join(max(0.1, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(1)

    def worker_pids(self) -> list[int]:
        """Process ids of the current workers (for tests and monitoring)."""
        with self._lock:
            return [w.process.pid for w in self._workers]

    # The manager thread from here on (and `start`, before there is one).

    def _spawn(self, index: int) -> _Worker:
        parent_conn, child_conn = self._ctx.Pipe()
        env = self._envs[index]
        cancel = self._ctx.Value("q", 0, lock=False)
        process = self._ctx.Process(
            target=_worker_main,
            args=(child_conn, cancel, str(self.weights_path), self.decoder_path, env, self.threads),
            name=f"engine-worker-{index}",
            daemon=True,
        )
        process.start()
        child_conn.close()
        return _Worker(index, process, parent_conn, env, cancel)

    def _start_worker(self, index: int) -> None:
        try:
            worker = self._spawn(index)
        except OSError as exc:  # out of processes or file descriptors: as transient as a failed load
            delay = self._start_failed(index, f"{type(exc).__name__}: {exc}")
            self._retry_at[index] = time.monotonic() + delay
            return
        with self._lock:
            self._workers = sorted([*self._workers, worker], key=lambda w: w.index)

    def _start_due(self) -> float:
        """Start the workers whose wait is over; the seconds until the next one is due (at most 1)."""
        if self._closing:
            self._retry_at.clear()
            return 1.0
        now = time.monotonic()
        for index, due in sorted(self._retry_at.items()):
            if due <= now:
                del self._retry_at[index]
                self._start_worker(index)
        return min([1.0, *(due - now for due in self._retry_at.values())])

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send_bytes(b"")

    def _manage(self) -> None:
        while True:
            with self._lock:
                if self._closing and all(w.job is None for w in self._workers):
                    break
            timeout = self._start_due()
            waitables: list[Any] = [self._wake_r]
            for worker in self._workers:
                waitables += [worker.conn, worker.process.sentinel]
            for ready in wait(waitables, timeout):
                if ready is self._wake_r:
                    while self._wake_r.poll():
                        self._wake_r.recv_bytes()
                    continue
                for worker in list(self._workers):
                    if ready is worker.conn:
                        self._receive(worker)
                    elif ready is worker.process.sentinel and not worker.process.is_alive():
                        self._replace(worker)
            self._dispatch()
        for worker in self._workers:
            with contextlib.suppress(OSError):
                worker.conn.send(("stop",))

    def _receive(self, worker: _Worker) -> None:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            worker.process.join(5)
            self._replace(worker)
            return
        self._handle(worker, message)

    def _handle(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            worker.ready = True
            self._worker_started()
            logger.info("engine worker %d ready (pid %d, %s)", worker.index, worker.process.pid, worker.env)
        elif kind == "init_failed":
            worker.retry_in = self._start_failed(worker.index, message[1])
        elif kind == "progress" and worker.job is not None:
            _, seq, event = message
            if seq == worker.job.seq:
                worker.job.report(event)
        elif kind == "done" and worker.job is not None:
            self._finish(worker, message[2])

    def _finish(self, worker: _Worker, outcome: Outcome) -> None:
        job = worker.job
        assert job is not None
        worker.job = None
        with self._lock:
            self._jobs.pop(job.spec.job_id, None)
        job.resolve(outcome)

    def _replace(self, worker: _Worker) -> None:
        """A worker's process ended: fail its job as crashed, and start another in its place (at once if it
        had started, after the backoff if it failed to).
        """
        # Its last words may still be in the pipe: why it could not start, or the outcome of its job.
        with contextlib.suppress(EOFError, OSError):
            while worker.conn.poll():
                self._handle(worker, worker.conn.recv())
        worker.conn.close()
        with self._lock:
            self._workers = [w for w in self._workers if w is not worker]
        code = worker.process.exitcode
        lost: Outcome | None = None
        if worker.job is not None:
            what = "killed" if code is not None and code < 0 else f"exited with code {code}"
            lost = self._crashed(worker.job, f"engine worker {worker.index} (pid {worker.process.pid})", what)
        elif not worker.ready and worker.retry_in is None:  # it died before it could say why
            worker.retry_in = self._start_failed(worker.index, f"exited with code {code} while starting")
        if not self._closing:
            self._retry_at[worker.index] = time.monotonic() + (worker.retry_in or 0.0)
            # The replacement of a worker that had started is in place before anyone hears of the loss,
            # so a caller that resubmits at once finds a full pool.
            self._start_due()
        if lost is not None:
            self._finish(worker, lost)

    def _dispatch(self) -> None:
        for worker in self._workers:
            if not worker.ready or worker.job is not None:
                continue
            with self._lock:
                if not self._pending:
                    return
                job = self._pending.popleft()
            worker.job = job
            try:
                worker.conn.send(("run", job.seq, job.spec))
            except OSError:
                self._replace(worker)


def _worker_main(
    conn: Connection,
    cancel_seq: Any,
    weights_path: str,
    decoder_path: Path | None,
    env: dict[str, str],
    threads: int,
) -> None:
    """A worker process: pin the device, load TensorFlow and the weights once, then run jobs until told."""
    os.environ.update(env)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parent = os.getppid()
    try:
        from engine.worker import Runner

        runner = Runner(Path(weights_path), threads, decoder_path)
    except Exception as exc:
        with contextlib.suppress(OSError):
            conn.send(("init_failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready",))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] != "run":
            return
        _, seq, spec = message

        def should_cancel(seq: int = seq) -> bool:
            return bool(cancel_seq.value == seq or os.getppid() != parent)

        def report(event: ProgressEvent, seq: int = seq) -> None:
            conn.send(("progress", seq, event))

        started = time.perf_counter()
        outcome = runner.run(spec, report, should_cancel)
        logger.debug("job %s ended in %.1f s", spec.job_id, time.perf_counter() - started)
        try:
            conn.send(("done", seq, outcome))
        except OSError:
            return
