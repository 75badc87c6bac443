"""The job types every engine backend and its workers share: what to run, its progress, how it ended, and
what a backend offers (`EngineBackend`) and hands back (`JobHandle`).

This module imports no sibling, only `engine.params` and `engine.images`, so the pools, their workers and the
bot can all import it without importing each other.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal, Protocol

from engine.images import ImageError, ImageProblem
from engine.params import Losses, StyleParams

__all__ = [
    "EngineBackend",
    "Failure",
    "ImageRole",
    "JobHandle",
    "JobSpec",
    "Outcome",
    "Pace",
    "ProgressCallback",
    "ProgressEvent",
    "failure_of",
]


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
    """One finished iteration of a running job."""

    job_id: str
    iteration: int  # over all scales
    total: int
    losses: Losses
    scale: int = 1  # coarse to fine: the scale being painted, 1-based, of `scales`, at long side `side`
    scales: int = 1
    side: int = 0
    # An animation: the frame being painted, 1-based, of `frames`; `iteration` and `total` count over the
    # whole clip. 0 for a picture.
    frame: int = 0
    frames: int = 0


@dataclass(frozen=True)
class Pace:
    """How fast a worker paints, measured as it started (`Runner.probe`) on a job like the bot's."""

    seconds: float  # per unit of work (engine.budget): one iteration at 512 px
    precision: str  # the number format the probe's convolutions ran in: "float32" or "bfloat16"
    why: str  # how that format was chosen: measured, cached, the GPU's capability, or as configured


ImageRole = Literal["content", "style", "output"]  # which of a job's images an image failure is about


class Failure(StrEnum):
    """Why a job failed, for the caller to word in its own voice; `Outcome.detail` says more, for the log."""

    BAD_IMAGE = "bad_image"  # an input is not an image the engine can use: `Outcome.problem` says why
    BAD_CLIP = "bad_clip"  # an animation that could not be decoded past its header (checked before queueing)
    OUT_OF_MEMORY = "out_of_memory"  # the picture is too large for the engine's memory
    NO_DISK_SPACE = "no_disk_space"  # the engine's disk is full
    WORKER_DIED = "worker_died"  # its worker stopped under it (killed, out of memory); `crashed` is set
    INVALID_SETTINGS = "invalid_settings"  # its settings cannot be run
    INTERNAL = "internal"  # anything else: an error the engine did not expect


@dataclass(frozen=True)
class Outcome:
    """How a job ended: `status` is "done" (the result is at `output`), "failed" (`failure` says why) or
    "cancelled" (asked to stop, or the backend shut down before it ran; `detail` says which).

    A failure carries no text for a user: the caller words `failure` (and for `BAD_IMAGE`, `problem`,
    `image` and the numbers) itself; `detail` is for the log.
    """

    job_id: str
    status: Literal["done", "failed", "cancelled"]
    output: Path | None = None
    losses: Losses | None = None
    seconds: float = 0.0
    failure: Failure | None = None  # why it failed; None unless status is "failed"
    detail: str | None = None  # for the log: what the engine saw, e.g. the exception; never for a user
    crashed: bool = False  # the worker process died: the job itself may well succeed if run again
    problem: ImageProblem | None = None  # with BAD_IMAGE: what is wrong with the image
    image: ImageRole | None = None  # with BAD_IMAGE: which image
    width: int | None = None  # with BAD_IMAGE: the image's size in pixels as displayed, when known
    height: int | None = None
    limit: float | None = None  # with TOO_LARGE, TOO_SMALL, TOO_THIN: the limit it broke (see ImageError)
    shrunk_to: int | None = None  # done, but painted at this long side: the size asked did not fit in memory

    @classmethod
    def failed(
        cls, job_id: str, failure: Failure, detail: str, *, crashed: bool = False, seconds: float = 0.0
    ) -> Outcome:
        """A failed job, for any failure but `BAD_IMAGE` (see `bad_image`)."""
        return cls(job_id, "failed", seconds=seconds, failure=failure, detail=detail, crashed=crashed)

    @classmethod
    def bad_image(cls, job_id: str, exc: ImageError, image: ImageRole, seconds: float = 0.0) -> Outcome:
        """A job failed by one of its images, as `exc` describes it."""
        return cls(
            job_id,
            "failed",
            seconds=seconds,
            failure=Failure.BAD_IMAGE,
            detail=str(exc),
            problem=exc.kind,
            image=image,
            width=exc.width,
            height=exc.height,
            limit=exc.limit,
        )


def failure_of(exc: BaseException) -> Failure:
    """The failure an unexpected exception stands for: memory, a full disk, or else an internal error."""
    if isinstance(exc, MemoryError):
        return Failure.OUT_OF_MEMORY
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return Failure.NO_DISK_SPACE
    return Failure.INTERNAL


ProgressCallback = Callable[[ProgressEvent], None]


class JobHandle:
    """A submitted job: its id, a future of its `Outcome`, and a way to cancel it."""

    def __init__(self, backend: EngineBackend, job_id: str, future: Future[Outcome]) -> None:
        self._backend = backend
        self.job_id = job_id
        self.future = future

    def cancel(self) -> bool:
        """Stop the job if it is queued or running; False if it had already ended."""
        return self._backend.cancel(self.job_id)

    def result(self, timeout: float | None = None) -> Outcome:
        """Block until the job ends."""
        return self.future.result(timeout)

    async def wait(self) -> Outcome:
        """Await the job's end without blocking the event loop."""
        return await asyncio.wrap_future(self.future)


class EngineBackend(Protocol):
    """What the bot needs from a pool of engine workers: `LocalPool`, `RayPool`, or `ScriptedBackend`."""

    size: int  # how many jobs run at once when every worker is ready
    on_ready: Callable[[], None] | None  # called on a backend thread whenever a worker becomes ready
    paced: Future[Pace]  # the first worker's probe, once it has measured one (never without a probe)

    @property
    def ready(self) -> int:
        """How many workers are ready now, busy or idle (at most `size`): the jobs it can run at once now."""
        ...

    @property
    def healthy(self) -> bool:
        """False while no worker is ready and the last try to start one failed; queued jobs then wait."""
        ...

    @property
    def pace(self) -> Pace | None:
        """How fast its first worker to measure paints; None until one has (or without a probe)."""
        ...

    @property
    def start_error(self) -> str | None:
        """Why a worker that has not started since failed its latest start; None if none is failing."""
        ...

    def submit(self, spec: JobSpec, on_progress: ProgressCallback | None = None) -> JobHandle:
        """Queue a job; `on_progress` is called on one of the backend's threads after each iteration."""
        ...

    def submit_async(self, spec: JobSpec, on_progress: ProgressCallback | None = None) -> JobHandle:
        """Like `submit`, but `on_progress` runs on the calling thread's running event loop."""
        ...

    def cancel(self, job_id: str) -> bool:
        """Drop a queued job or stop a running one; False if the backend does not hold it."""
        ...

    def busy(self) -> int:
        """How many jobs are queued or running."""
        ...

    def close(self, timeout: float = 10.0) -> None:
        """Cancel what is left and stop the workers."""
        ...
