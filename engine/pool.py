"""A pool of spawned worker processes that run stylisation jobs, each worker loading the weights once.

The parent never imports TensorFlow. One manager thread owns all worker pipes: it hands the next queued job
to an idle worker, relays progress, notices a worker that died (killed, out of memory) and fails only that
worker's job, then starts a fresh worker. Callbacks run on the manager thread; `submit_async` moves them onto
an asyncio loop so an event loop is never blocked.
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
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Literal, Protocol, Self

from engine.params import Losses, StyleParams

logger = logging.getLogger(__name__)

# A worker that fails to start this many times in a row means the pool cannot work (bad weights, say).
MAX_START_FAILURES = 3


@dataclass(frozen=True)
class JobSpec:
    """What to stylise and where to write the result (its suffix picks the format)."""

    job_id: str
    content: Path
    styles: tuple[Path, ...]
    output: Path
    params: StyleParams
    # "stylize": the optimisation; "preview": one AdaIN feed-forward pass (needs the pool's decoder).
    mode: Literal["stylize", "preview"] = "stylize"
    alpha: float = 1.0  # AdaIN style strength of a preview, 0..1


@dataclass(frozen=True)
class ProgressEvent:
    """One finished iteration of a running job; `preview` is a JPEG on preview iterations."""

    job_id: str
    iteration: int
    total: int
    losses: Losses
    preview: bytes | None = None


@dataclass(frozen=True)
class Outcome:
    """How a job ended. `error` is short and fit to show a user; `detail` is for the log."""

    job_id: str
    status: Literal["done", "failed", "cancelled"]
    output: Path | None = None
    losses: Losses | None = None
    seconds: float = 0.0
    error: str | None = None
    detail: str | None = None
    crashed: bool = False  # the worker process died: the job itself may well succeed if run again


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass
class _Job:
    seq: int
    spec: JobSpec
    on_progress: ProgressCallback | None
    future: Future[Outcome] = field(default_factory=Future)


@dataclass
class _Worker:
    index: int
    process: Any  # multiprocessing's SpawnProcess
    conn: Connection
    env: dict[str, str]
    cancel: Any  # shared int: the seq of the job this worker should stop (0 = none)
    ready: bool = False
    job: _Job | None = None


class JobHandle:
    """A submitted job: its id, a future of its `Outcome`, and a way to cancel it."""

    def __init__(self, pool: EngineBackend, job: _Job) -> None:
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
    """What every engine pool shares: the queue of jobs no worker has yet, and how they are submitted,
    cancelled and counted. A subclass starts its workers, hands them queued jobs when `_kick`ed, and
    stops a running job in `_stop_running`.
    """

    size: int  # how many jobs run at once

    def __init__(self, weights_path: Path, decoder_path: Path | None) -> None:
        if not weights_path.is_file():
            raise FileNotFoundError(f"VGG-19 weights not found at {weights_path}")
        self.weights_path = weights_path
        self.decoder_path = decoder_path  # the AdaIN decoder, for "preview" jobs
        self._lock = threading.Lock()
        self._pending: deque[_Job] = deque()
        self._jobs: dict[str, _Job] = {}  # queued and running, by job id
        self._seq = itertools.count(1)
        self._closing = False
        self._start_failures = 0
        self._broken: str | None = None  # why the workers cannot start, once that is certain

    def start(self) -> Self:
        raise NotImplementedError

    def close(self, timeout: float = 10.0) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, spec: JobSpec, on_progress: ProgressCallback | None = None) -> JobHandle:
        """Queue a job; `on_progress` is called on one of the pool's threads after each iteration."""
        job = _Job(next(self._seq), spec, on_progress)
        with self._lock:
            if self._closing:
                raise RuntimeError("the engine pool is closed")
            if spec.job_id in self._jobs:
                raise ValueError(f"job {spec.job_id} is already in the pool")
            if self._broken is not None:
                _resolve(
                    job.future,
                    Outcome(spec.job_id, "failed", error="the engine could not start", detail=self._broken),
                )
                return JobHandle(self, job)
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
                _resolve(job.future, Outcome(job_id, "cancelled"))
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
            _resolve(job.future, Outcome(job.spec.job_id, "cancelled", error=error))

    def _kick(self) -> None:
        """A job was queued: hand it to an idle worker when there is one."""
        raise NotImplementedError

    def _stop_running(self, job: _Job) -> None:
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
    ) -> None:
        super().__init__(weights_path, decoder_path)
        gpus = detect_gpus()
        self.size = workers or max(1, len(gpus))
        cpus = os.cpu_count() or 1
        self.threads = threads_per_worker or max(1, cpus // self.size)
        # Worker i is pinned to GPU i (round robin when there are more workers than GPUs); none on CPU.
        self._envs = [
            {"CUDA_VISIBLE_DEVICES": gpus[i % len(gpus)] if gpus else "-1"} for i in range(self.size)
        ]
        self._ctx = mp.get_context("spawn")
        self._workers: list[_Worker] = []
        self._wake_r, self._wake_w = self._ctx.Pipe(duplex=False)
        self._thread: threading.Thread | None = None

    def start(self) -> EnginePool:
        """Spawn the workers and the manager thread; returns at once (workers load in the background)."""
        self._workers = [self._spawn(i) for i in range(self.size)]
        self._thread = threading.Thread(target=self._manage, name="engine-pool", daemon=True)
        self._thread.start()
        return self

    def _kick(self) -> None:
        self._wake()

    def _stop_running(self, job: _Job) -> None:
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
            self._drop_pending("the engine is shutting down")
            for worker in self._workers:
                if worker.job is not None:
                    worker.cancel.value = worker.job.seq
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout)
        for worker in self._workers:
            worker.process.join(max(0.1, timeout / 2))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(1)

    def worker_pids(self) -> list[int]:
        """Process ids of the current workers (for tests and monitoring)."""
        return [w.process.pid for w in self._workers]

    # The manager thread from here on.

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

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send_bytes(b"")

    def _manage(self) -> None:
        while True:
            with self._lock:
                if self._closing and all(w.job is None for w in self._workers):
                    break
            waitables: list[Any] = [self._wake_r]
            for worker in self._workers:
                waitables += [worker.conn, worker.process.sentinel]
            for ready in wait(waitables, timeout=1.0):
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
        kind = message[0]
        if kind == "ready":
            worker.ready = True
            self._start_failures = 0
            logger.info("engine worker %d ready (pid %d, %s)", worker.index, worker.process.pid, worker.env)
        elif kind == "init_failed":
            self._start_failures += 1
            logger.error("engine worker %d failed to start: %s", worker.index, message[1])
            if self._start_failures >= MAX_START_FAILURES:
                self._break(message[1])
        elif kind == "progress" and worker.job is not None:
            _, seq, event = message
            if seq == worker.job.seq and worker.job.on_progress is not None:
                try:
                    worker.job.on_progress(event)
                except Exception:
                    logger.exception("job %s: progress callback failed", worker.job.spec.job_id)
        elif kind == "done" and worker.job is not None:
            self._finish(worker, message[2])

    def _finish(self, worker: _Worker, outcome: Outcome) -> None:
        job = worker.job
        assert job is not None
        worker.job = None
        with self._lock:
            self._jobs.pop(job.spec.job_id, None)
        _resolve(job.future, outcome)

    def _replace(self, worker: _Worker) -> None:
        code = worker.process.exitcode
        lost: Outcome | None = None
        if worker.job is not None:
            reason = "killed" if code is not None and code < 0 else f"exited with code {code}"
            logger.error("job %s: engine worker %d %s", worker.job.spec.job_id, worker.index, reason)
            lost = Outcome(
                worker.job.spec.job_id,
                "failed",
                error="the engine stopped while working on it (it may have run out of memory)",
                detail=f"worker {worker.index} (pid {worker.process.pid}) {reason}",
                crashed=True,
            )
        elif not worker.ready:
            self._start_failures += 1
            if self._start_failures >= MAX_START_FAILURES:
                self._break(f"worker {worker.index} exited with code {code} while starting")
        worker.conn.close()
        if self._closing or self._broken is not None:
            self._workers = [w for w in self._workers if w is not worker]
        else:
            # The replacement is in place before anyone hears of the loss, so a caller that resubmits
            # at once finds a full pool.
            self._workers[self._workers.index(worker)] = self._spawn(worker.index)
        if lost is not None:
            self._finish(worker, lost)

    def _break(self, reason: str) -> None:
        with self._lock:
            self._broken = reason
            pending = list(self._pending)
            self._pending.clear()
            for job in pending:
                del self._jobs[job.spec.job_id]
        for job in pending:
            _resolve(
                job.future,
                Outcome(job.spec.job_id, "failed", error="the engine could not start", detail=reason),
            )

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


def _resolve(future: Future[Outcome], outcome: Outcome) -> None:
    """Set a job's outcome unless the caller already gave up on the future (cancelled it)."""
    if not future.done():
        with contextlib.suppress(InvalidStateError):
            future.set_result(outcome)


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
