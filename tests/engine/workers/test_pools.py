"""What every pool promises, on real workers: the local processes and Ray actors run the same tests, and
the scripted backend joins them where no painting is needed (a worker that cannot start)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from engine.images import ImageProblem, load_image
from engine.params import StyleParams
from engine.workers import Failure, JobSpec, LocalPool, ProgressEvent, QueuedPool, ScriptedBackend
from tests.engine.workers.conftest import spec, wait_until
from tests.timing import scaled

if TYPE_CHECKING:
    from engine.workers import RayPool

    Painting = LocalPool | RayPool  # the pools whose workers paint

# A wait longer than any test: a worker whose start failed is not tried again while the test runs.
NEVER = (600.0, 600.0)
# What each worker of the module's pools times as it starts: the bot's kind of job (float32, so that no
# test measures the precision on the machine's own cache).
PROBE = StyleParams(optimizer="lbfgs", margin=16, precision="float32")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A local Ray with room for the module's pool and one more of two actors."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")
    ray.init(address="local", num_cpus=4, include_dashboard=False, object_store_memory=100_000_000)
    yield
    ray.shutdown()


@pytest.fixture(scope="module", params=["local", "ray"])
def pool(request: pytest.FixtureRequest, tiny_weights_file: Path) -> Iterator[Painting]:
    """A pool of two workers on the tiny weights: local processes or Ray actors."""
    if request.param == "local":
        with LocalPool(tiny_weights_file, workers=2, threads_per_worker=1, probe=PROBE) as local:
            yield local
        return
    request.getfixturevalue("ray_cluster")
    from engine.workers import RayPool

    with RayPool(tiny_weights_file, workers=2, probe=PROBE) as actors:
        wait_until(lambda: len(actors.worker_pids()) == 2)
        yield actors


def running_pid(pool: Painting, job_id: str) -> int:
    """The pid of the process running `job_id`."""
    if isinstance(pool, LocalPool):
        return next(w.process.pid for w in pool._workers if w.job and w.job.spec.job_id == job_id)
    return next(s.pid for s in pool._slots if s.job and s.job.spec.job_id == job_id)


def test_a_worker_measures_its_pace_before_it_is_ready(pool: Painting) -> None:
    pace = pool.paced.result(scaled(120))
    assert pool.pace == pace
    assert (pace.precision, pace.why) == ("float32", "as configured")
    # Seconds per L-BFGS evaluation at 512 px of the narrow test network: more than nothing, and far
    # less than the real network's seconds.
    assert 0.0 < pace.seconds < 5.0


def test_two_jobs_run_at_once_with_progress(
    pool: Painting, images: tuple[Path, Path], tmp_path: Path
) -> None:
    events: dict[str, list[ProgressEvent]] = {"a": [], "b": []}
    a = pool.submit(spec("a", images, tmp_path, 300), events["a"].append)
    b = pool.submit(spec("b", images, tmp_path, 300), events["b"].append)
    # Both make progress before either finishes: they run side by side on the two workers.
    wait_until(lambda: events["a"] and events["b"])
    assert not (a.future.done() and b.future.done())
    first, second = a.result(scaled(120)), b.result(scaled(120))
    assert (first.status, second.status) == ("done", "done")
    # Every iteration's event reached the caller, in order, the last one too.
    assert [e.iteration for e in events["a"]] == list(range(1, 301))
    assert all(e.total == 300 for e in events["a"])
    # The result is where the caller asked.
    assert first.output == tmp_path / "a.png"
    assert load_image(first.output).shape == (24, 36, 3)
    assert first.losses is not None
    assert first.losses.total < events["a"][0].losses.total
    # The two workers compute the same thing from the same weights and inputs.
    assert second.losses == first.losses


def test_cancel_queued_and_running(pool: Painting, images: tuple[Path, Path], tmp_path: Path) -> None:
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


def test_killed_worker_fails_only_its_job(pool: Painting, images: tuple[Path, Path], tmp_path: Path) -> None:
    progress: list[ProgressEvent] = []
    victim = pool.submit(spec("victim", images, tmp_path, 100_000), progress.append)
    wait_until(lambda: progress)
    pids = pool.worker_pids()
    other_progress: list[ProgressEvent] = []
    other = pool.submit(spec("other", images, tmp_path, 200), other_progress.append)
    wait_until(lambda: other_progress)
    victim_pid = running_pid(pool, "victim")
    os.kill(victim_pid, signal.SIGKILL)
    outcome = victim.result(scaled(60))
    assert (outcome.status, outcome.failure, outcome.crashed) == ("failed", Failure.WORKER_DIED, True)
    assert outcome.detail
    assert other.result(scaled(60)).status == "done"
    # The pool started a fresh worker in the dead one's place and still runs jobs.
    wait_until(lambda: len(pool.worker_pids()) == len(pids))
    assert victim_pid not in pool.worker_pids()
    assert pool.submit(spec("after", images, tmp_path, 3)).result(scaled(60)).status == "done"


def test_bad_image_fails_with_a_clear_message(
    pool: Painting, tmp_path: Path, images: tuple[Path, Path]
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
    pool: Painting, images: tuple[Path, Path], tmp_path: Path
) -> None:
    loop = asyncio.get_running_loop()
    seen_on_loop: list[bool] = []
    all_seen = asyncio.Event()

    def on_progress(event: ProgressEvent) -> None:
        seen_on_loop.append(asyncio.get_running_loop() is loop)
        if event.iteration == event.total:
            all_seen.set()

    handle = pool.submit_async(spec("async", images, tmp_path, 20), on_progress)
    outcome = await handle.wait()
    # The last events may be relayed to the loop after the outcome: wait for them, not for a set time.
    await asyncio.wait_for(all_seen.wait(), scaled(10))
    assert outcome.status == "done"
    assert len(seen_on_loop) == 20
    assert all(seen_on_loop)


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
    request.getfixturevalue("ray_cluster")
    import ray

    from engine.workers import RayPool

    with RayPool(tiny_weights_file, workers=2, start_backoff=NEVER) as actors:
        ray.kill(actors._slots[1].actor)
        yield actors


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
