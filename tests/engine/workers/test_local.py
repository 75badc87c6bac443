"""The process pool: real spawned workers on synthetic weights."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from engine.images import ImageProblem, load_image, save_image
from engine.params import StyleParams
from engine.workers import Failure, JobSpec, LocalPool, ProgressEvent
from engine.workers.local import split_gpus, worker_devices
from tests.engine.conftest import smooth_image
from tests.timing import scaled


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("images")
    save_image(smooth_image(24, 36, 1), folder / "content.png")
    save_image(smooth_image(20, 20, 2), folder / "style.png")
    return folder / "content.png", folder / "style.png"


@pytest.fixture(scope="module")
def pool(tiny_weights_file: Path):  # type: ignore[no-untyped-def]
    with LocalPool(tiny_weights_file, workers=2, threads_per_worker=1) as p:
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


def test_two_jobs_run_at_once_with_progress(
    pool: LocalPool, images: tuple[Path, Path], tmp_path: Path
) -> None:
    events: dict[str, list[ProgressEvent]] = {"a": [], "b": []}
    a = pool.submit(spec("a", images, tmp_path, 400), events["a"].append)
    b = pool.submit(spec("b", images, tmp_path, 400), events["b"].append)
    # Both make progress before either finishes: they run side by side on the two workers.
    wait_until(lambda: events["a"] and events["b"])
    assert not (a.future.done() and b.future.done())
    first, second = a.result(scaled(120)), b.result(scaled(120))
    assert (first.status, second.status) == ("done", "done")
    assert [e.iteration for e in events["a"]] == list(range(1, 400))
    assert all(e.total == 400 for e in events["a"])
    assert first.output is not None
    assert load_image(first.output).shape == (24, 36, 3)
    assert first.losses is not None
    assert first.losses.total < events["a"][0].losses.total


def test_cancel_queued_and_running(pool: LocalPool, images: tuple[Path, Path], tmp_path: Path) -> None:
    started: list[int] = []
    running = [pool.submit(spec(f"r{i}", images, tmp_path, 100_000), started.append) for i in range(2)]
    queued = pool.submit(spec("q", images, tmp_path, 5))
    wait_until(lambda: len(started) >= 2)
    assert queued.cancel()
    assert queued.result(scaled(5)).status == "cancelled"
    for handle in running:
        assert handle.cancel()
    assert [h.result(scaled(30)).status for h in running] == ["cancelled", "cancelled"]
    assert not (tmp_path / "r0.png").exists()
    assert not pool.cancel("r0")


def test_killed_worker_fails_only_its_job(pool: LocalPool, images: tuple[Path, Path], tmp_path: Path) -> None:
    progress: list[ProgressEvent] = []
    victim = pool.submit(spec("victim", images, tmp_path, 100_000), progress.append)
    wait_until(lambda: progress)
    pids = pool.worker_pids()
    other = pool.submit(spec("other", images, tmp_path, 30))
    victim_pid = next(w.process.pid for w in pool._workers if w.job and w.job.spec.job_id == "victim")
    os.kill(victim_pid, signal.SIGKILL)
    outcome = victim.result(scaled(30))
    assert (outcome.status, outcome.failure, outcome.crashed) == ("failed", Failure.WORKER_DIED, True)
    assert "killed" in (outcome.detail or "")
    assert other.result(scaled(60)).status == "done"
    # The pool replaced the dead worker and still runs jobs.
    assert victim_pid not in pool.worker_pids()
    assert len(pool.worker_pids()) == len(pids)
    assert pool.submit(spec("after", images, tmp_path, 3)).result(scaled(60)).status == "done"


def test_bad_image_fails_with_a_clear_message(
    pool: LocalPool, tmp_path: Path, images: tuple[Path, Path]
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
    pool: LocalPool, images: tuple[Path, Path], tmp_path: Path
) -> None:
    loop = asyncio.get_running_loop()
    seen_on_loop: list[bool] = []

    def on_progress(event: ProgressEvent) -> None:
        seen_on_loop.append(asyncio.get_running_loop() is loop)

    handle = pool.submit_async(spec("async", images, tmp_path, 20), on_progress)
    ticks = 0
    while not handle.future.done():  # the loop keeps running while the job does
        ticks += 1
        await asyncio.sleep(0.01)
    outcome = await handle.wait()
    await asyncio.sleep(0.05)
    assert outcome.status == "done"
    assert ticks > 0
    assert len(seen_on_loop) == 19
    assert all(seen_on_loop)


def test_closing_while_a_worker_still_loads_stops_it_at_once(tiny_weights_file: Path) -> None:
    """A worker that has not said "ready" holds no job: closing kills it instead of waiting for it to load."""
    pool = LocalPool(tiny_weights_file, workers=1, threads_per_worker=1).start()
    [worker] = pool._workers  # importing TensorFlow takes seconds: it is not ready yet
    assert not worker.ready
    pool.close()
    assert not worker.process.is_alive()
    assert worker.process.exitcode == -signal.SIGKILL
