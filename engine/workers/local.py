"""A pool of spawned worker processes on this machine that run stylisation jobs, each loading weights once.

The parent never imports TensorFlow. One manager thread owns all worker pipes: it hands the next queued job
to an idle worker, relays progress, notices a worker that died (killed, out of memory) and fails only that
worker's job, then starts a fresh worker. Callbacks run on the manager thread; `submit_async` moves them onto
an asyncio loop so an event loop is never blocked. The failure policy is `QueuedPool`'s.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from engine.params import StyleParams
from engine.workers.jobs import Outcome, ProgressEvent
from engine.workers.queued import START_BACKOFF, QueuedJob, QueuedPool, existing_weights

__all__ = ["LocalPool", "detect_gpus", "split_gpus", "worker_devices"]

logger = logging.getLogger(__name__)


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


def split_gpus(gpus: Sequence[str], previews: bool) -> tuple[list[str], list[str]]:
    """The GPUs of the painting workers, and of the preview worker (empty lists: the CPU).

    TensorFlow keeps the GPU memory a process has grown to, so a worker sharing a GPU with the preview
    worker loses for good what the largest preview took. With two GPUs or more the preview worker has the
    last to itself: previews and fast mode run at the painting's size (large by default with GPUs), where
    an AdaIN pass is quick on a GPU but slow on a CPU. With one GPU the preview worker shares it, as
    nothing else would keep previews instant.
    """
    if previews and len(gpus) > 1:
        return list(gpus[:-1]), [gpus[-1]]
    return list(gpus), list(gpus[:1])


def worker_devices(gpus: Sequence[str], workers: int) -> list[str]:
    """Each worker's CUDA_VISIBLE_DEVICES: worker i on GPU i, round robin when there are more workers than
    GPUs; "-1" (the CPU) without GPUs."""
    return [gpus[i % len(gpus)] if gpus else "-1" for i in range(workers)]


class LocalPool(QueuedPool):
    """Run `JobSpec`s on `workers` processes (default: one per GPU of `gpus`, else 1).

    With `probe`, each worker times a few iterations of a job like it before it is ready (`Runner.probe`),
    and the first to do so sets the pool's `pace`.
    """

    def __init__(
        self,
        weights_path: Path,
        workers: int | None = None,
        threads_per_worker: int | None = None,
        decoder_path: Path | None = None,
        start_backoff: tuple[float, float] = START_BACKOFF,
        gpus: Sequence[str] | None = None,
        probe: StyleParams | None = None,
    ) -> None:
        super().__init__(start_backoff)
        self.probe = probe
        self.weights_path = existing_weights(weights_path)
        self.decoder_path = decoder_path  # the AdaIN decoder, for "preview" jobs
        gpus = detect_gpus() if gpus is None else gpus  # the GPUs its workers may use
        self.size = workers or max(1, len(gpus))
        cpus = os.cpu_count() or 1
        self.threads = threads_per_worker or max(1, cpus // self.size)
        self._envs = [{"CUDA_VISIBLE_DEVICES": device} for device in worker_devices(gpus, self.size)]
        self._ctx = mp.get_context("spawn")
        self._workers: list[_Worker] = []  # the live ones, by index; a slot waiting to start again has none
        self._retry_at: dict[int, float] = {}  # slot index -> time.monotonic() to start its worker again
        self._wake_r, self._wake_w = self._ctx.Pipe(duplex=False)
        self._thread: threading.Thread | None = None

    def start(self) -> LocalPool:
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
            self._mark_closing()
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
            if not worker.ready:
                # Still loading TensorFlow, with no job: nothing to wait for, and it would take seconds.
                worker.process.kill()
            worker.process.join(max(0.1, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(1)

    @property
    def ready(self) -> int:
        """How many workers have loaded the network and not died since."""
        with self._lock:
            return sum(w.ready for w in self._workers)

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
            args=(
                child_conn,
                cancel,
                str(self.weights_path),
                self.decoder_path,
                env,
                self.threads,
                self._probe_for_start(),
            ),
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
            self._measured(worker.index, message[1])
            worker.ready = True
            self._worker_started(worker.index)
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
            logger.info(
                "job %s: running on engine worker %d (pid %d)",
                job.spec.job_id,
                worker.index,
                worker.process.pid,
            )
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
    probe: StyleParams | None = None,
) -> None:
    """A worker process: pin the device, load TensorFlow and the weights once, measure its pace if asked,
    then run jobs until told."""
    os.environ.update(env)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parent = os.getppid()
    try:
        from engine.workers.runner import Runner

        runner = Runner(Path(weights_path), threads, decoder_path)
    except Exception as exc:
        with contextlib.suppress(OSError):
            conn.send(("init_failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None if probe is None else runner.probe(probe)))
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
        logger.debug("job %s: ended in %.1f s", spec.job_id, time.perf_counter() - started)
        try:
            conn.send(("done", seq, outcome))
        except OSError:
            return
