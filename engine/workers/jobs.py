"""The job types every engine backend and its workers share: what to run, its progress, how it ended, and
what a backend offers (`EngineBackend`) and hands back (`JobHandle`).

This module imports no sibling, only `engine.params`, so the pools, their workers and the bot can all import
it without importing each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from engine.params import Losses, StyleParams

__all__ = ["EngineBackend", "JobHandle", "JobSpec", "Outcome", "ProgressCallback", "ProgressEvent"]


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
    """How a job ended. `error` is short and fit to show a user; `detail` is for the log.

    `status` is "done" (the result is at `output`), "failed" (see `error`) or "cancelled" (asked to stop,
    or the pool shut down before it ran).
    """

    job_id: str
    status: Literal["done", "failed", "cancelled"]
    output: Path | None = None
    losses: Losses | None = None
    seconds: float = 0.0
    error: str | None = None
    detail: str | None = None
    crashed: bool = False  # the worker process died: the job itself may well succeed if run again


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
    """What the bot needs from a pool of engine workers: `EnginePool`, `RayPool`, or `ScriptedBackend`."""

    size: int  # how many jobs run at once

    @property
    def healthy(self) -> bool:
        """False while its workers fail to start; queued jobs then wait for one that does."""
        ...

    @property
    def start_error(self) -> str | None:
        """Why the last try to start a worker failed; None once one has started (or none failed)."""
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
