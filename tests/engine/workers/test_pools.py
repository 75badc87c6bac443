"""The pool's failure policy on real processes: workers that cannot start fail no job, the pool retries."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.images import save_image
from engine.workers import LocalPool, QueuedPool, ScriptedBackend
from tests.engine.conftest import smooth_image
from tests.engine.workers.test_local import spec, wait_until
from tests.timing import scaled


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("images")
    save_image(smooth_image(24, 36, 1), folder / "content.png")
    save_image(smooth_image(20, 20, 2), folder / "style.png")
    return folder / "content.png", folder / "style.png"


# A wait longer than any test: a worker whose start failed is not tried again while the test runs.
NEVER = (600.0, 600.0)


@pytest.fixture(params=["local", "ray", "scripted"])
def one_of_two_broken(request: pytest.FixtureRequest, tiny_weights_file: Path) -> Iterator[QueuedPool]:
    """A pool of two workers, the second of which failed to start: killed while it loads (a broken GPU
    looks the same to the pool), or scripted so.
    """
    if request.param == "scripted":
        with ScriptedBackend(size=2) as scripted:
            scripted.fail_starts("the GPU is gone", workers=1)
            yield scripted
        return
    if request.param == "local":
        with LocalPool(tiny_weights_file, workers=2, threads_per_worker=1, start_backoff=NEVER) as local:
            os.kill(local.worker_pids()[1], signal.SIGKILL)
            yield local
        return
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")
    from engine.workers import RayPool

    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100_000_000)
    try:
        with RayPool(tiny_weights_file, workers=2, start_backoff=NEVER) as actors:
            ray.kill(actors._slots[1].actor)
            yield actors
    finally:
        ray.shutdown()


def test_a_worker_that_cannot_start_leaves_the_others_painting(
    one_of_two_broken: QueuedPool, images: tuple[Path, Path], tmp_path: Path
) -> None:
    pool = one_of_two_broken
    wait_until(lambda: pool.start_failures == 1 and pool.ready == 1)
    assert (pool.size, pool.healthy, pool.start_error is not None) == (2, True, True)
    first, second = (pool.submit(spec(name, images, tmp_path, 2)) for name in ("first", "second"))
    assert [first.result(scaled(120)).status, second.result(scaled(120)).status] == ["done", "done"]
    assert (tmp_path / "first.png").is_file()
    # The broken worker waits out its backoff; the pool still counts one ready worker of two.
    assert (pool.ready, pool.size, pool.start_failures) == (1, 2, 1)


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
