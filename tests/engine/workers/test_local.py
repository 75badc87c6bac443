"""The local pool: its GPU plan, and its workers' starts and stops as real spawned processes.

What every pool does alike (painting, cancelling, a killed worker) is tested in test_pools.py.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from engine.workers import LocalPool
from engine.workers.local import split_gpus, worker_devices
from tests.engine.workers.conftest import spec, wait_until
from tests.timing import scaled


@pytest.mark.parametrize(
    ("gpus", "painting", "preview"),
    [
        ([], ["-1"], ["-1"]),  # no GPU: everything on the CPU
        (["0"], ["0"], ["0"]),  # one GPU: the preview worker shares it
        (["0", "1"], ["0"], ["1"]),
        (["0", "1", "2", "3"], ["0", "1", "2"], ["3"]),
        (["3", "5", "7"], ["3", "5"], ["7"]),  # as CUDA_VISIBLE_DEVICES names them
    ],
)
def test_the_preview_worker_shares_a_gpu_only_when_there_is_one(
    gpus: list[str], painting: list[str], preview: list[str]
) -> None:
    painting_gpus, preview_gpus = split_gpus(gpus, previews=True)
    # One painting worker per GPU it may use (the default), one preview worker.
    assert worker_devices(painting_gpus, max(1, len(painting_gpus))) == painting
    assert worker_devices(preview_gpus, 1) == preview
    # Without previews the painting workers take every GPU.
    assert split_gpus(gpus, previews=False) == (gpus, gpus[:1])


def test_more_workers_than_gpus_go_round_robin() -> None:
    assert worker_devices(["0", "1", "2"], 5) == ["0", "1", "2", "0", "1"]
    assert worker_devices([], 2) == ["-1", "-1"]


def test_closing_while_a_worker_still_loads_stops_it_at_once(tiny_weights_file: Path) -> None:
    """A worker that has not said "ready" holds no job: closing kills it instead of waiting for it to load."""
    pool = LocalPool(tiny_weights_file, workers=1, threads_per_worker=1).start()
    [worker] = pool._workers  # importing TensorFlow takes seconds: it is not ready yet
    assert not worker.ready
    pool.close()
    assert not worker.process.is_alive()
    assert worker.process.exitcode == -signal.SIGKILL


def start_failures_logged(caplog: pytest.LogCaptureFixture) -> int:
    return sum("failed to start" in record.getMessage() for record in caplog.records)


def test_job_waits_while_workers_cannot_start_and_runs_once_they_can(
    tmp_path: Path, images: tuple[Path, Path], tiny_weights_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="engine.workers.queued")
    weights = tmp_path / "vgg19.npz"
    weights.write_bytes(b"garbage")
    # The next try (0.5 s, then seconds loading TensorFlow) reads the file after the test has put it right.
    with LocalPool(weights, workers=1, threads_per_worker=1, start_backoff=(0.5, 1.0)) as pool:
        handle = pool.submit(spec("x", images, tmp_path, 2))
        wait_until(lambda: pool.start_error is not None)
        assert not pool.healthy
        assert (pool.start_error or "").startswith(f"WeightsError: {weights}")
        # The job is still queued: neither failed nor cancelled.
        assert not handle.future.done()
        assert pool.busy() == 1
        # Someone puts the file right; the pool's next try starts a worker, which runs the job.
        shutil.copy(tiny_weights_file, tmp_path / "fixed.npz")
        os.replace(tmp_path / "fixed.npz", weights)
        outcome = handle.result(scaled(120))
        assert outcome.status == "done"
        assert pool.healthy
        assert pool.start_error is None
        # One count and one log line for the one failed start: not again when that worker exited.
        assert pool.start_failures == start_failures_logged(caplog) == 1


def test_worker_killed_while_starting_counts_once_and_close_does_not_wait_for_the_retry(
    tmp_path: Path, images: tuple[Path, Path], tiny_weights_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="engine.workers.queued")
    backoff = 60.0
    pool = LocalPool(tiny_weights_file, workers=1, threads_per_worker=1, start_backoff=(backoff, backoff))
    pool.start()
    try:
        # Killed at once, long before it loads TensorFlow: it dies without saying why.
        os.kill(pool.worker_pids()[0], signal.SIGKILL)
        handle = pool.submit(spec("waits", images, tmp_path, 2))
        wait_until(lambda: pool.start_failures > 0)
        assert pool.start_error == "exited with code -9 while starting"
        assert pool.worker_pids() == []  # its replacement waits out the backoff
        assert not handle.future.done()
    finally:
        started = time.monotonic()
        closer = threading.Thread(target=pool.close)
        closer.start()
        closer.join(backoff / 2)
    assert not closer.is_alive(), "close waited for the next start"
    assert time.monotonic() - started < backoff / 2
    outcome = handle.result(0)
    assert (outcome.status, outcome.failure, outcome.detail) == (
        "cancelled",
        None,
        "the engine is shutting down",
    )
    assert pool.start_failures == start_failures_logged(caplog) == 1
