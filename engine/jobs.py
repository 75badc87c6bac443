"""The job types every engine backend and its workers share: what to run, its progress, how it ended.

This module imports no sibling but `engine.params`, so the pool, its workers and the bot can all import it
without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engine.params import Losses, StyleParams

__all__ = ["JobSpec", "Outcome", "ProgressCallback", "ProgressEvent"]


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
