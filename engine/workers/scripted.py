"""An `EngineBackend` that runs no engine: each job ends as a script says, on a thread of this process.

Like rq's `SimpleWorker`, it is for tests. The callers of a backend (the bot's dispatcher: requeue, cancel,
delivery) can be tested in milliseconds against every way a job can end, without TensorFlow or processes:

    backend = ScriptedBackend(size=1)
    backend.plan("7", Scripted(progress=3, hold=True))    # three progress events, then wait for release
    backend.plan("8", Scripted(crashed=True))              # its worker "dies": failed, crashed=True
    backend.plan("9", Scripted(failure=Failure.BAD_IMAGE, problem=ImageProblem.TOO_SMALL))
    ...
    backend.release("7")                                   # job 7 now ends (done: its output is written)

It honours what `LocalPool` and `RayPool` promise: `size` jobs at once and the rest queued in order,
`cancel` of a queued or running job, `busy`, `close` cancelling what is left, progress on the caller's loop
with `submit_async`, and jobs running on the workers that are ready while others cannot start
(`fail_starts`), or waiting while none can.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Self

from engine.host.files import write_atomic
from engine.images import ImageProblem
from engine.params import Losses
from engine.workers.jobs import Failure, JobHandle, JobSpec, Outcome, Pace, ProgressCallback, ProgressEvent
from engine.workers.queued import QueuedJob, QueuedPool

__all__ = ["Scripted", "ScriptedBackend"]

logger = logging.getLogger(__name__)

# A small valid PNG (32×32, white; big enough for every check on a picture): what a done job writes unless
# its script gives other bytes.
WHITE_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000020000000200802000000fc18eda3000000284944415478daedcd4101"
    "0000040430f4ef7c4af0db0aac93d4a7a967028140201008040281e0ca02c7f1033d06caada50000000049454e44ae426082"
)


@dataclass(frozen=True)
class Scripted:
    """What one scripted job does: report `progress` events, wait for `release` if `hold`, then end.

    It ends done (`output` written to the spec's output) unless `crashed` or `failure` says otherwise.
    """

    progress: int = 0  # progress events to report, iterations 1..progress
    total: int | None = None  # the iterations each event claims in all (default: the spec's iterations)
    hold: bool = False  # after the progress, wait until `ScriptedBackend.release` (or a cancel)
    failure: Failure | None = None  # end failed with this; with BAD_IMAGE, `problem` says why
    problem: ImageProblem = ImageProblem.DAMAGED  # with BAD_IMAGE: what is wrong with the photo
    crashed: bool = False  # end as if the worker died under the job: WORKER_DIED, crashed=True
    output: bytes = WHITE_PNG  # what a done job writes to its spec's output
    seconds: float = 1.0  # what a done job's outcome claims it took
    shrunk_to: int | None = None  # what a done job's outcome claims it painted at, short of memory


@dataclass
class _Run:
    job: QueuedJob
    script: Scripted
    wake: threading.Event = field(default_factory=threading.Event)  # set by release and cancel
    released: bool = False
    cancelled: bool = False


class ScriptedBackend(QueuedPool):
    """Runs jobs by their `Scripted` plan (`plan`, else `default`), `size` at once, each on its own thread.

    The queue, `submit`, `cancel`, `busy` and the health are `QueuedPool`'s own, as in the real pools;
    only the workers are scripted.
    """

    worker_noun = "scripted worker"

    def __init__(self, size: int = 1, default: Scripted | None = None, pace: Pace | None = None) -> None:
        """`pace`: what its workers claim to have probed as they started (None: no probe)."""
        if size < 1:
            raise ValueError(f"size must be at least 1, not {size}")
        super().__init__()
        self._measured(0, pace)
        self.size = size
        self.default = default or Scripted()
        self.submitted: list[JobSpec] = []  # every spec submitted, in order
        self._plans: dict[str, Scripted] = {}
        self._runs: dict[str, _Run] = {}  # running, by job id
        self._threads: set[threading.Thread] = set()
        self._broken = 0  # how many of its workers cannot start (the last ones)

    def plan(self, job_id: str, script: Scripted) -> None:
        """Say in advance what the job `job_id` will do when it runs."""
        with self._lock:
            self._plans[job_id] = script

    def release(self, job_id: str) -> bool:
        """Let a running job that `hold`s end; False if no such job is running."""
        with self._lock:
            run = self._runs.get(job_id)
            if run is None:
                return False
            run.released = True
        run.wake.set()
        return True

    def fail_starts(self, reason: str, workers: int | None = None) -> None:
        """Behave as a backend of which `workers` workers (default: all) cannot start: jobs run on the
        others, or wait while none is ready."""
        broken = self.size if workers is None else workers
        if not 0 < broken <= self.size:
            raise ValueError(f"workers must be 1..{self.size}, not {workers}")
        with self._lock:
            self._broken = broken
        for index in range(self.size - broken, self.size):
            self._start_failed(index, reason)

    def recover(self) -> None:
        """Every worker starts again: healthy, and queued jobs run on all of them."""
        with self._lock:
            broken, self._broken = self._broken, 0
        for index in range(self.size - broken, self.size):
            self._worker_started(index)
        self._dispatch()

    @property
    def ready(self) -> int:
        """How many of its workers can start: `size` unless `fail_starts` said otherwise."""
        with self._lock:
            return self.size - self._broken

    def start(self) -> Self:
        """Nothing to start; here so that it is used as the real pools are."""
        return self

    def submit(self, spec: JobSpec, on_progress: ProgressCallback | None = None) -> JobHandle:
        """Queue a job (see `QueuedPool.submit`) and remember its spec in `submitted`."""
        handle = super().submit(spec, on_progress)
        with self._lock:
            self.submitted.append(spec)
        return handle

    def close(self, timeout: float = 10.0) -> None:
        """Cancel the queued jobs, stop the running ones, and wait for their threads."""
        with self._lock:
            if self._closing:
                return
            self._mark_closing()
            self._drop_pending("the engine is shutting down")
            runs, threads = list(self._runs.values()), list(self._threads)
            for run in runs:
                run.cancelled = True
        for run in runs:
            run.wake.set()
        for thread in threads:
            thread.join(timeout)

    def _kick(self) -> None:
        self._dispatch()

    def _stop_running(self, job: QueuedJob) -> None:
        with self._lock:
            run = self._runs.get(job.spec.job_id)
            if run is None:
                return  # it ended meanwhile
            run.cancelled = True
        run.wake.set()

    def _dispatch(self) -> None:
        with self._lock:
            while not self._closing and self._pending and len(self._runs) < self.size - self._broken:
                job = self._pending.popleft()
                run = _Run(job, self._plans.pop(job.spec.job_id, self.default))
                self._runs[job.spec.job_id] = run
                thread = threading.Thread(target=self._run, args=(run,), name=f"scripted-{job.spec.job_id}")
                self._threads.add(thread)
                thread.start()

    def _run(self, run: _Run) -> None:
        spec, script = run.job.spec, run.script
        total = script.total if script.total is not None else spec.params.iterations
        losses = Losses(content=1.0, style=1.0, tv=0.0, total=2.0)
        for iteration in range(1, script.progress + 1):
            if run.cancelled:
                break
            run.job.report(ProgressEvent(spec.job_id, iteration, total, losses))
        if script.hold and not run.cancelled:
            run.wake.wait()
        logger.debug("job %s: scripted run ends", spec.job_id)
        self._finish(run, self._outcome(run, losses))

    def _outcome(self, run: _Run, losses: Losses) -> Outcome:
        spec, script = run.job.spec, run.script
        if run.cancelled:
            return Outcome(spec.job_id, "cancelled")
        if script.crashed:
            return Outcome.failed(spec.job_id, Failure.WORKER_DIED, "scripted worker died", crashed=True)
        if script.failure is Failure.BAD_IMAGE:
            detail = f"the photo is refused as {script.problem.value} (scripted)"
            return Outcome(
                spec.job_id,
                "failed",
                failure=Failure.BAD_IMAGE,
                detail=detail,
                problem=script.problem,
                image="content",
            )
        if script.failure is not None:
            return Outcome.failed(spec.job_id, script.failure, f"scripted {script.failure.value}")
        write_atomic(spec.output, script.output)
        return Outcome(spec.job_id, "done", spec.output, losses, script.seconds, shrunk_to=script.shrunk_to)

    def _finish(self, run: _Run, outcome: Outcome) -> None:
        job_id = run.job.spec.job_id
        with self._lock:
            del self._runs[job_id]
            self._jobs.pop(job_id, None)
            self._threads.discard(threading.current_thread())
        run.job.resolve(outcome)
        self._dispatch()
