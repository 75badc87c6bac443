"""Fixtures and helpers for the pools' tests: two tiny images, a job on them, and a wait on a condition."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.images import save_image
from engine.params import StyleParams
from engine.workers import JobSpec
from tests.engine.conftest import smooth_image
from tests.timing import scaled


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("images")
    save_image(smooth_image(24, 36, 1), folder / "content.png")
    save_image(smooth_image(20, 20, 2), folder / "style.png")
    return folder / "content.png", folder / "style.png"


def spec(job_id: str, images: tuple[Path, Path], out: Path, iterations: int, **kw: object) -> JobSpec:
    return JobSpec(
        job_id,
        images[0],
        (images[1],),
        out / f"{job_id}.png",
        StyleParams(iterations=iterations, seed=0, **kw),  # type: ignore[arg-type]
    )


def wait_until(condition: Callable[[], object], timeout: float = 60.0) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds, scaled to this machine."""
    deadline = time.monotonic() + scaled(timeout)
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)
