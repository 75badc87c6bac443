"""The Ray pool on a real local Ray cluster: actors on tiny weights, bytes in and out, no shared files.

What every pool does alike (painting, cancelling, a killed worker) is tested in test_pools.py.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.workers.conftest import spec, wait_until
from tests.timing import scaled

ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")

from engine.workers import RayPool  # noqa: E402 - only once ray is known to be there
from engine.workers.ray_actor import actor_folder  # noqa: E402


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    # Four logical CPUs on however many cores: room for the module's two actors and one more pool's.
    ray.init(address="local", num_cpus=4, include_dashboard=False, object_store_memory=100_000_000)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def pool(
    cluster: None, tiny_weights_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RayPool]:
    weights = tmp_path_factory.mktemp("driver") / "tiny.npz"
    shutil.copy(tiny_weights_file, weights)
    with RayPool(weights, workers=2) as p:
        # The actors, and those that replace them, get the weights from Ray's object store, not this file.
        weights.unlink()
        wait_until(lambda: len(p.worker_pids()) == 2)
        yield p


def test_a_job_handed_to_an_actor_that_died_idle_is_not_charged(
    pool: RayPool, images: tuple[Path, Path], tmp_path: Path
) -> None:
    wait_until(lambda: pool.ready == 2)
    with pool._lock:
        dead = [(slot.pid, slot.token) for slot in pool._slots]
    assert all(actor_folder(token).is_dir() for _, token in dead)
    # Both idle actors die (as on a lost node); nothing in the pool notices until it hands them a job.
    for pid, _ in dead:
        os.kill(pid, signal.SIGKILL)
    outcome = pool.submit(spec("after-loss", images, tmp_path, 3)).result(scaled(120))
    assert (outcome.status, outcome.crashed, outcome.failure) == ("done", False, None)
    wait_until(lambda: pool.ready == 2)
    assert not {pid for pid, _ in dead} & set(pool.worker_pids())
    # A killed actor cannot remove its folder: the pool did, as it replaced the actor.
    wait_until(lambda: not any(actor_folder(token).exists() for _, token in dead))


def test_an_actor_not_ready_in_time_is_killed_and_tried_again(
    cluster: None, images: tuple[Path, Path], tiny_weights_file: Path, tmp_path: Path
) -> None:
    with RayPool(tiny_weights_file, workers=1, start_backoff=(0.2, 0.2), ready_timeout=0.01) as slow:
        handle = slow.submit(spec("waits", images, tmp_path, 2))
        wait_until(lambda: slow.start_failures >= 2)
        assert slow.start_error == "not ready after 0.01 s"
        assert (slow.ready, slow.healthy, handle.future.done()) == (0, False, False)
    assert handle.result(0).status == "cancelled"


def test_an_actor_removes_its_folder_when_the_pool_closes(cluster: None, tiny_weights_file: Path) -> None:
    with RayPool(tiny_weights_file, workers=1) as single:
        wait_until(lambda: single.ready == 1)
        folder = actor_folder(single._slots[0].token)
        assert folder.is_dir()
    assert not folder.exists()


def test_job_waits_while_actors_cannot_start_and_runs_once_they_can(
    cluster: None, tmp_path: Path, images: tuple[Path, Path], tiny_weights_file: Path
) -> None:
    weights = tmp_path / "vgg19.npz"
    weights.write_bytes(b"garbage")
    # A bounded wait for each actor's start: one kept pending by actors still dying from the tests before
    # (their CPUs not yet given back) is tried again soon, not after the default five minutes.
    with RayPool(weights, workers=1, start_backoff=(0.1, 1.0), ready_timeout=scaled(30)) as bad:
        handle = bad.submit(spec("x", images, tmp_path, 2))
        wait_until(lambda: bad.start_error is not None)
        failed = bad._slots[0].token
        assert not bad.healthy
        assert (bad.start_error or "").startswith("WeightsError: ")  # on the copy the actor was sent
        wait_until(lambda: not actor_folder(failed).exists())  # the actor cleaned up as it failed
        assert not handle.future.done()
        assert bad.busy() == 1
        # The pool reads the file again for its next try once the file has changed.
        shutil.copy(tiny_weights_file, tmp_path / "fixed.npz")
        os.replace(tmp_path / "fixed.npz", weights)
        outcome = handle.result(scaled(120))
        assert outcome.status == "done"
        assert bad.healthy
        assert bad.start_error is None
        assert bad.start_failures >= 1
