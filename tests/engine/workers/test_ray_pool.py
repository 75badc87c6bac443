"""The Ray pool on a real local Ray cluster: actors on tiny weights, bytes in and out, no shared files."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.images import ImageProblem, load_image, save_image
from engine.params import StyleParams
from engine.workers import Failure, JobSpec, ProgressEvent
from tests.engine.conftest import smooth_image
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
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("images")
    save_image(smooth_image(24, 36, 1), folder / "content.png")
    save_image(smooth_image(20, 20, 2), folder / "style.png")
    return folder / "content.png", folder / "style.png"


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


def spec(job_id: str, images: tuple[Path, Path], out: Path, iterations: int, **kw: object) -> JobSpec:
    return JobSpec(
        job_id,
        images[0],
        (images[1],),
        out / f"{job_id}.png",
        StyleParams(iterations=iterations, seed=0, **kw),
    )  # type: ignore[arg-type]


def wait_until(condition, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_two_jobs_run_at_once_with_progress(pool: RayPool, images: tuple[Path, Path], tmp_path: Path) -> None:
    events: dict[str, list[ProgressEvent]] = {"a": [], "b": []}
    a = pool.submit(spec("a", images, tmp_path, 300), events["a"].append)
    b = pool.submit(spec("b", images, tmp_path, 300), events["b"].append)
    wait_until(lambda: events["a"] and events["b"])
    assert not (a.future.done() and b.future.done())
    first, second = a.result(scaled(120)), b.result(scaled(120))
    assert (first.status, second.status) == ("done", "done")
    # Every iteration's event crossed from the actor, in order.
    assert [e.iteration for e in events["a"]] == list(range(1, 300))
    assert all(e.total == 300 for e in events["a"])
    # The result came back as bytes and was written here, where the caller asked.
    assert first.output == tmp_path / "a.png"
    assert load_image(first.output).shape == (24, 36, 3)
    assert first.losses is not None
    assert first.losses.total < events["a"][0].losses.total
    # The two actors compute the same thing from the same weights and inputs.
    assert second.losses == first.losses


def test_cancel_queued_and_running(pool: RayPool, images: tuple[Path, Path], tmp_path: Path) -> None:
    started: list[ProgressEvent] = []
    running = [pool.submit(spec(f"r{i}", images, tmp_path, 100_000), started.append) for i in range(2)]
    queued = pool.submit(spec("q", images, tmp_path, 5))
    wait_until(lambda: {e.job_id for e in started} == {"r0", "r1"})
    assert pool.busy() == 3
    assert queued.cancel()
    assert queued.result(scaled(5)).status == "cancelled"
    for handle in running:
        assert handle.cancel()
    assert [h.result(scaled(30)).status for h in running] == ["cancelled", "cancelled"]
    assert not (tmp_path / "r0.png").exists()
    assert not pool.cancel("r0")
    assert pool.busy() == 0


def test_killed_actor_fails_only_its_job(pool: RayPool, images: tuple[Path, Path], tmp_path: Path) -> None:
    progress: list[ProgressEvent] = []
    victim = pool.submit(spec("victim", images, tmp_path, 100_000), progress.append)
    wait_until(lambda: progress)
    pids = pool.worker_pids()
    other_progress: list[ProgressEvent] = []
    other = pool.submit(spec("other", images, tmp_path, 200), other_progress.append)
    wait_until(lambda: other_progress)
    victim_pid = next(s.pid for s in pool._slots if s.job and s.job.spec.job_id == "victim")
    os.kill(victim_pid, signal.SIGKILL)
    outcome = victim.result(scaled(60))
    assert (outcome.status, outcome.failure, outcome.crashed) == ("failed", Failure.WORKER_DIED, True)
    assert "died" in (outcome.detail or "")
    assert other.result(scaled(60)).status == "done"
    # The pool started a fresh actor in the dead one's place and still runs jobs.
    wait_until(lambda: len(pool.worker_pids()) == len(pids))
    assert victim_pid not in pool.worker_pids()
    assert pool.submit(spec("after", images, tmp_path, 3)).result(scaled(60)).status == "done"


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


def test_bad_image_fails_with_a_clear_message(
    pool: RayPool, images: tuple[Path, Path], tmp_path: Path
) -> None:
    bogus = tmp_path / "bogus.png"
    bogus.write_bytes(b"not an image at all")
    outcome = pool.submit(
        JobSpec("bad", bogus, (images[1],), tmp_path / "x.png", StyleParams(iterations=2))
    ).result(scaled(60))
    assert (outcome.status, outcome.failure) == ("failed", Failure.BAD_IMAGE)
    assert (outcome.problem, outcome.image, outcome.crashed) == (ImageProblem.UNREADABLE, "content", False)
    assert outcome.detail == "the photo is not an image that can be read"


async def test_async_caller_gets_progress_on_its_loop(
    pool: RayPool, images: tuple[Path, Path], tmp_path: Path
) -> None:
    loop = asyncio.get_running_loop()
    seen_on_loop: list[bool] = []

    def on_progress(event: ProgressEvent) -> None:
        seen_on_loop.append(asyncio.get_running_loop() is loop)

    handle = pool.submit_async(spec("async", images, tmp_path, 20), on_progress)
    outcome = await handle.wait()
    await asyncio.sleep(0.05)
    assert outcome.status == "done"
    assert len(seen_on_loop) == 19
    assert all(seen_on_loop)


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
