"""The engine's pool on Ray actors across many hosts, behind the same interface as `LocalPool`.

One actor per GPU (on CPU-only clusters, one per `cpus_per_worker` CPUs) loads the network once. Nothing
needs a shared filesystem: the weights go through Ray's object store (put once, fetched once per node,
checked by the sha256 `VGGWeights.load` verifies), a job's images go to its actor as bytes and the result's
bytes come back to be written here. A job streams its progress back while it runs (a Ray generator).

Ray never queues or retries a job: the pool hands a job to an actor only when that actor is idle and has
just answered a ping, so a job is never charged for an actor that had died idle (its node lost, say): the
job goes back to the head of the queue and a fresh actor takes the dead one's place. An actor that dies
under its job (killed, out of memory, its node lost) fails that one job with `crashed=True`, so that the
caller's store, the source of truth, requeues it. An actor that cannot start, or is not ready within
`ready_timeout` (no node has room for it, its node hangs), fails no job: it is killed and, as in
`LocalPool`, tried again after a growing wait, reading the weights file again if it changed; the other
actors run the queue meanwhile.

`ray` is imported when the pool starts, never at import, and TensorFlow only inside the actors.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine.host.files import write_atomic
from engine.params import StyleParams
from engine.workers.jobs import Failure, Outcome, failure_of
from engine.workers.queued import START_BACKOFF, QueuedJob, QueuedPool, existing_weights
from engine.workers.ray_actor import ActorItem, RayActor, actor_folder

__all__ = ["READY_TIMEOUT", "RayPool"]

logger = logging.getLogger(__name__)

# Seconds a new actor has to load TensorFlow and the weights (pulled from the object store by a new node)
# and answer `ready`; an actor Ray cannot place (no node with a free GPU) is not ready either.
READY_TIMEOUT = 300.0
# Seconds an idle actor has to answer the ping before it is given a job; one that does not is taken for dead.
PING_TIMEOUT = 10.0
# Seconds `close` gives each actor to remove its files and exit before it is killed.
STOP_TIMEOUT = 5.0


@dataclass
class _Slot:
    index: int
    actor: Any  # ray.actor.ActorHandle of a `RayActor`
    token: str  # names the actor's folder (`actor_folder`)
    ready: bool = False
    where: str = ""  # "host pid N node ID", once the actor has started
    pid: int = 0
    node_id: str = ""
    job: QueuedJob | None = None


class RayPool(QueuedPool):
    """Run `JobSpec`s on `workers` Ray actors (default: one per GPU in the cluster, else by CPUs)."""

    worker_noun = "actor"

    def __init__(
        self,
        weights_path: Path,
        workers: int | None = None,
        cpus_per_worker: int = 1,
        address: str | None = None,
        decoder_path: Path | None = None,
        start_backoff: tuple[float, float] = START_BACKOFF,
        ready_timeout: float = READY_TIMEOUT,
        probe: StyleParams | None = None,  # a job each actor times as it starts, as `LocalPool`'s
    ) -> None:
        super().__init__(start_backoff)
        self.probe = probe
        self.weights_path = existing_weights(weights_path)
        self.decoder_path = decoder_path  # the AdaIN decoder, for "preview" jobs
        self.cpus_per_worker = cpus_per_worker
        self.ready_timeout = ready_timeout
        self.address = address  # None: start a Ray of our own on this machine
        self.size = workers or 0  # 0 until `start` has counted the cluster's GPUs or CPUs
        self._slots: list[_Slot] = []
        self._runs: set[threading.Thread] = set()  # one per running job, until it has its outcome
        self._stopped: set[int] = set()  # seqs of jobs cancelled while handed to an actor
        self._owns_ray = False
        self._actor_class: Any = None
        self._files: tuple[Any, Any] = (None, None)  # ObjectRefs of the weights' and decoder's bytes
        self._stamp: tuple[int, int] | None = None  # the weights file's (mtime_ns, size) when it was put

    def start(self) -> RayPool:
        """Join Ray (a connected Ray as it is, else `address` or a new local one) and create the actors.

        Returns once the actors are placed, before they have loaded the weights.
        """
        import ray

        if not ray.is_initialized():
            _init_ray(self.address)
            self._owns_ray = True
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        if not self.size:
            self.size = gpus or max(1, int(resources.get("CPU", 1)) // self.cpus_per_worker)
        # max_concurrency=2: `cancel` must get in while `run` works. No restarts or retries: a job that
        # lost its actor goes back to the caller, whose store decides whether it runs again.
        self._actor_class = ray.remote(
            num_cpus=self.cpus_per_worker,
            num_gpus=1 if gpus else 0,
            max_concurrency=2,
            max_restarts=0,
            max_task_retries=0,
        )(RayActor)
        self._put_files()
        with self._lock:
            self._slots = [self._spawn(i) for i in range(self.size)]
        logger.info(
            "ray pool: %d actors (%s each) on a cluster of %d CPUs, %d GPUs",
            self.size,
            "1 GPU" if gpus else f"{self.cpus_per_worker} CPUs",
            int(resources.get("CPU", 0)),
            gpus,
        )
        return self

    def _kick(self) -> None:
        self._dispatch()

    def _stop_running(self, job: QueuedJob) -> None:
        with self._lock:
            self._stopped.add(job.seq)  # in case its actor turns out dead and the job goes back to the queue
            actors = [slot.actor for slot in self._slots if slot.job is job]
        for actor in actors:
            actor.cancel.remote(job.seq)

    def close(self, timeout: float = 10.0) -> None:
        """Cancel what is left, stop the actors, and Ray too if the pool started it."""
        import ray

        with self._lock:
            if self._closing:
                return
            self._mark_closing()
            self._drop_pending("the engine is shutting down")
            running = [(slot.actor, slot.job.seq) for slot in self._slots if slot.job is not None]
            runs, slots = list(self._runs), list(self._slots)
        for actor, seq in running:
            actor.cancel.remote(seq)
        deadline = time.monotonic() + timeout
        for thread in runs:
            thread.join(max(0.0, deadline - time.monotonic()))
        # Each actor removes its files and exits; one that cannot (hung, its node gone) is killed.
        stops = []
        for slot in slots:
            with contextlib.suppress(Exception):
                stops.append(slot.actor.stop.remote())
        with contextlib.suppress(Exception):
            ray.wait(stops, num_returns=len(stops), timeout=STOP_TIMEOUT)
        for slot in slots:
            _kill(slot, wait=True)
        for thread in runs:  # a job its actor did not stop in time ends as its actor dies
            thread.join(5.0)
        if self._owns_ray:
            ray.shutdown()

    @property
    def ready(self) -> int:
        """How many actors have loaded the network and are not known to have died since."""
        with self._lock:
            return sum(slot.ready for slot in self._slots)

    def worker_pids(self) -> list[int]:
        """Process ids of the actors that have started (for tests and monitoring)."""
        with self._lock:
            return [slot.pid for slot in self._slots if slot.ready]

    def worker_nodes(self) -> list[str]:
        """Ray node ids of the actors that have started, one per actor."""
        with self._lock:
            return [slot.node_id for slot in self._slots if slot.ready]

    # Everything below runs on the pool's threads: one per starting actor, one per running job.

    def _put_files(self) -> None:
        """Put the weights' and decoder's bytes in Ray's object store for the actors to load."""
        import ray

        stat = self.weights_path.stat()
        decoder = self.decoder_path.read_bytes() if self.decoder_path is not None else None
        self._files = (ray.put(self.weights_path.read_bytes()), ray.put(decoder))
        self._stamp = (stat.st_mtime_ns, stat.st_size)

    def _spawn(self, index: int) -> _Slot:
        token = uuid.uuid4().hex[:16]
        actor = self._actor_class.remote(*self._files, self.cpus_per_worker, token, self._probe_for_start())
        slot = _Slot(index, actor, token)
        threading.Thread(
            target=self._await_ready, args=(slot,), name=f"ray-actor-{index}", daemon=True
        ).start()
        return slot

    def _await_ready(self, slot: _Slot) -> None:
        import ray

        ready = slot.actor.ready.remote()
        try:
            host, node_id, pid, failure, pace = ray.get(ready, timeout=self.ready_timeout)
        except ray.exceptions.GetTimeoutError:
            host, node_id, pid, failure, pace = "", "", 0, f"not ready after {self.ready_timeout:g} s", None
        except ray.exceptions.RayError as exc:
            host, node_id, pid, failure, pace = "", "", 0, _reason(exc), None
        if failure is not None:
            _kill(slot)
            if not self._closing:
                self._retry(slot, self._start_failed(slot.index, failure))
            return
        self._measured(slot.index, pace)
        with self._lock:
            slot.ready, slot.pid, slot.node_id = True, pid, node_id
            slot.where = f"{host} pid {pid} node {node_id[:8]}"
        self._worker_started(slot.index)
        logger.info("engine actor %d ready on %s", slot.index, slot.where)
        self._dispatch()

    def _retry(self, slot: _Slot, delay: float) -> None:
        """Start a new actor in the place of `slot`, whose actor failed to start, after `delay` seconds."""
        if self._closed.wait(delay):
            return
        try:
            stat = self.weights_path.stat()
            if (stat.st_mtime_ns, stat.st_size) != self._stamp:  # someone put right what failed, perhaps
                self._put_files()
        except OSError as exc:  # gone since the pool started: the bytes already in Ray are all there is
            logger.warning("engine weights not read again: %s", exc)
        with self._lock:
            if not self._closing and slot in self._slots:
                self._slots[self._slots.index(slot)] = self._spawn(slot.index)

    def _dispatch(self) -> None:
        """Give queued jobs to idle, started actors: Ray itself never holds a job that waits."""
        with self._lock:
            if self._closing:
                return
            for slot in self._slots:
                if not self._pending:
                    break
                if slot.ready and slot.job is None:
                    job = slot.job = self._pending.popleft()
                    run = threading.Thread(
                        target=self._run, args=(slot, job), name=f"ray-job-{job.spec.job_id}", daemon=True
                    )
                    self._runs.add(run)
                    run.start()

    def _run(self, slot: _Slot, job: QueuedJob) -> None:
        import ray

        spec = job.spec
        if not self._answers(slot):
            self._requeue(slot, job)
            return
        logger.info("job %s: running on engine actor %d (%s)", spec.job_id, slot.index, slot.where)
        try:
            content = spec.content.read_bytes()
            styles = [path.read_bytes() for path in spec.styles]
        except OSError as exc:
            self._finish(
                slot, job, Outcome.failed(spec.job_id, failure_of(exc), f"its images cannot be read: {exc}")
            )
            return
        outcome: Outcome | None = None
        result: bytes | None = None
        try:
            stream = slot.actor.run.options(num_returns="streaming").remote(job.seq, spec, content, styles)
            for ref in stream:
                item: ActorItem = ray.get(ref)
                if isinstance(item, list):
                    for event in item:
                        job.report(event)
                else:
                    outcome, result = item
        except ray.exceptions.RayTaskError as exc:
            outcome = Outcome.failed(spec.job_id, Failure.INTERNAL, _reason(exc))
        except ray.exceptions.RayError as exc:
            lost = self._crashed(job, f"ray actor {slot.index} ({slot.where})", f"died: {_reason(exc)}")
            self._finish(slot, job, lost, died=True)
            return
        assert outcome is not None, "an actor's run always ends with its outcome"
        if outcome.status == "done" and result is not None:
            try:
                write_atomic(spec.output, result)
            except OSError as exc:
                outcome = Outcome.failed(spec.job_id, failure_of(exc), f"the result cannot be saved: {exc}")
            else:
                outcome = replace(outcome, output=spec.output)
        self._finish(slot, job, outcome)

    def _answers(self, slot: _Slot) -> bool:
        """Whether the idle actor of `slot` answers a ping in time: Ray learns late of a lost node."""
        import ray

        try:
            ray.get(slot.actor.ready.remote(), timeout=PING_TIMEOUT)
        except ray.exceptions.RayError as exc:  # GetTimeoutError is one too
            logger.warning("engine actor %d (%s) died while idle: %s", slot.index, slot.where, _reason(exc))
            return False
        return True

    def _requeue(self, slot: _Slot, job: QueuedJob) -> None:
        """`job` was handed to an actor found dead before it started: it goes back to the head of the queue,
        uncharged (or ends cancelled if it was cancelled meanwhile), and a fresh actor replaces the dead one.
        """
        cancelled = False
        with self._lock:
            self._runs.discard(threading.current_thread())
            slot.job = None
            self._replace(slot)
            if job.seq in self._stopped or self._closing:
                cancelled = True
                self._jobs.pop(job.spec.job_id, None)
            else:
                self._pending.appendleft(job)
        if cancelled:
            job.resolve(Outcome(job.spec.job_id, "cancelled"))
        self._dispatch()

    def _replace(self, slot: _Slot) -> None:
        """Kill the dead actor of `slot` and start a fresh one in its place; the caller holds the lock."""
        if slot not in self._slots:
            return
        _kill(slot)
        if self._closing:
            self._slots.remove(slot)
        else:
            self._slots[self._slots.index(slot)] = self._spawn(slot.index)

    def _finish(self, slot: _Slot, job: QueuedJob, outcome: Outcome, died: bool = False) -> None:
        """End a job on its own thread (`_run`'s): resolve it, replace a dead actor, dispatch the next."""
        with self._lock:
            self._jobs.pop(job.spec.job_id, None)
            self._stopped.discard(job.seq)
            self._runs.discard(threading.current_thread())
            slot.job = None
            if died:
                # The replacement is in place before anyone hears of the loss, so a caller that
                # resubmits at once finds a full pool.
                self._replace(slot)
        job.resolve(outcome)
        self._dispatch()


def _init_ray(address: str | None) -> None:
    """Connect to the cluster at `address`, or start a Ray of our own; keep the caller's SIGTERM handler."""
    import ray

    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if on_main else None
    if address:
        ray.init(address=address)
    else:
        ray.init(address="local", include_dashboard=False)
    # ray.init makes SIGTERM exit at once; the application's own graceful shutdown must keep it.
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def _kill(slot: _Slot, wait: bool = False) -> None:
    """Kill the actor of `slot`, and once it is dead remove its folder if that is on this host (a killed
    actor cannot): on a thread of its own unless `wait`, as an actor may take seconds to die."""
    import ray

    def bury() -> None:
        with contextlib.suppress(Exception):
            ray.kill(slot.actor, no_restart=True)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline:  # until a call fails: the actor is dead (or hangs, node lost)
            try:
                ray.get(slot.actor.ready.remote(), timeout=STOP_TIMEOUT)
            except Exception:
                break
            time.sleep(0.05)
        shutil.rmtree(actor_folder(slot.token), ignore_errors=True)

    if wait:
        bury()
    else:
        threading.Thread(target=bury, name=f"ray-bury-{slot.index}", daemon=True).start()


def _reason(exc: BaseException) -> str:
    """A Ray error's first and last lines: what happened and why, without the ids and tracebacks between."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join([type(exc).__name__ + ":", *dict.fromkeys(lines[:1] + lines[-1:])])
