"""The scripted backend keeps the promises of the real pools, so the bot's paths can be tested against it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.images import ImageProblem, load_image
from engine.params import StyleParams
from engine.workers import EngineBackend, Failure, JobSpec, Pace, ProgressEvent, Scripted, ScriptedBackend


def spec(job_id: str, tmp_path: Path, iterations: int = 10) -> JobSpec:
    content = tmp_path / "content.png"
    return JobSpec(
        job_id, content, (content,), tmp_path / f"{job_id}.png", StyleParams(iterations=iterations)
    )


def wait_until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


@pytest.fixture
def backend() -> Iterator[ScriptedBackend]:
    with ScriptedBackend(size=1) as scripted:
        yield scripted


def test_it_is_an_engine_backend() -> None:
    chosen: EngineBackend = ScriptedBackend()  # mypy checks the protocol; this checks it at run time too
    offered = {"ready", "healthy", "start_error", "pace", "paced", "submit", "submit_async", "cancel", "busy"}
    assert offered <= set(dir(chosen))
    chosen.close()


def test_its_pace_is_the_one_given_and_a_closed_backend_waits_for_none() -> None:
    pace = Pace(0.5, "float32", "as configured")
    with ScriptedBackend(pace=pace) as paced:
        assert (paced.pace, paced.paced.result(0)) == (pace, pace)
    unpaced = ScriptedBackend()
    assert unpaced.pace is None
    unpaced.close()
    assert unpaced.paced.cancelled()  # whoever waited for a pace stops waiting
    assert unpaced.pace is None


def test_done_writes_the_output_and_reports_the_progress(backend: ScriptedBackend, tmp_path: Path) -> None:
    events: list[ProgressEvent] = []
    backend.plan("a", Scripted(progress=3))
    outcome = backend.submit(spec("a", tmp_path, iterations=10), events.append).result(5)
    assert (outcome.status, outcome.output, outcome.failure) == ("done", tmp_path / "a.png", None)
    assert [(e.job_id, e.iteration, e.total) for e in events] == [("a", 1, 10), ("a", 2, 10), ("a", 3, 10)]
    assert load_image(tmp_path / "a.png").shape == (32, 32, 3)
    assert backend.busy() == 0
    assert [s.job_id for s in backend.submitted] == ["a"]


def test_failures_and_crashes_end_as_scripted(backend: ScriptedBackend, tmp_path: Path) -> None:
    backend.plan("oom", Scripted(failure=Failure.OUT_OF_MEMORY))
    backend.plan("crash", Scripted(progress=1, crashed=True))
    backend.plan("bad", Scripted(failure=Failure.BAD_IMAGE, problem=ImageProblem.TOO_SMALL))
    oom = backend.submit(spec("oom", tmp_path)).result(5)
    crash = backend.submit(spec("crash", tmp_path)).result(5)
    bad = backend.submit(spec("bad", tmp_path)).result(5)
    assert (oom.status, oom.failure, oom.crashed) == ("failed", Failure.OUT_OF_MEMORY, False)
    assert (crash.status, crash.failure, crash.crashed) == ("failed", Failure.WORKER_DIED, True)
    assert (bad.failure, bad.problem, bad.image) == (Failure.BAD_IMAGE, ImageProblem.TOO_SMALL, "content")
    assert not (tmp_path / "oom.png").exists()


def test_size_jobs_run_at_once_and_the_rest_wait_in_order(tmp_path: Path) -> None:
    with ScriptedBackend(size=2, default=Scripted(hold=True)) as backend:
        handles = [backend.submit(spec(name, tmp_path)) for name in "abc"]
        assert backend.busy() == 3
        backend.release("c")  # queued, not running: nothing to release
        assert not handles[2].future.done()
        assert backend.release("b")
        assert handles[1].result(5).status == "done"
        wait_until(lambda: backend.release("c"))  # c took b's place
        assert handles[2].result(5).status == "done"
        assert not handles[0].future.done()
        assert backend.release("a")
        assert handles[0].result(5).status == "done"
        assert backend.busy() == 0


def test_cancel_stops_a_held_job_and_drops_a_queued_one(backend: ScriptedBackend, tmp_path: Path) -> None:
    backend.plan("running", Scripted(progress=2, hold=True))
    progress: list[ProgressEvent] = []
    running = backend.submit(spec("running", tmp_path), progress.append)
    queued = backend.submit(spec("queued", tmp_path))
    wait_until(lambda: len(progress) == 2)
    assert queued.cancel()
    assert queued.result(5).status == "cancelled"
    assert running.cancel()
    assert running.result(5).status == "cancelled"
    assert not (tmp_path / "running.png").exists()
    assert not backend.cancel("running")  # it has ended: the backend no longer holds it
    assert backend.busy() == 0


def test_unhealthy_backend_keeps_jobs_queued_until_it_recovers(
    backend: ScriptedBackend, tmp_path: Path
) -> None:
    backend.fail_starts("WeightsError: bad weights")
    assert (backend.ready, backend.healthy, backend.start_error) == (0, False, "WeightsError: bad weights")
    backend.plan("x", Scripted(hold=True))
    handle = backend.submit(spec("x", tmp_path))
    # Jobs are handed out as they are submitted: a held job that had started would be running now.
    assert not backend.release("x")
    assert (handle.future.done(), backend.busy()) == (False, 1)
    backend.recover()
    assert (backend.healthy, backend.start_error) == (True, None)
    assert backend.release("x")
    assert handle.result(5).status == "done"


def test_jobs_run_on_the_workers_that_started(tmp_path: Path) -> None:
    with ScriptedBackend(size=3, default=Scripted(hold=True)) as backend:
        backend.fail_starts("the GPU is gone", workers=2)
        assert (backend.ready, backend.healthy, backend.start_error) == (1, True, "the GPU is gone")
        handles = [backend.submit(spec(name, tmp_path)) for name in "ab"]
        assert not backend.release("b")  # queued: only one worker is ready, and "a" has it
        assert backend.release("a")
        assert handles[0].result(5).status == "done"
        wait_until(lambda: backend.release("b"))
        assert handles[1].result(5).status == "done"
        backend.recover()
        assert (backend.ready, backend.start_error) == (3, None)


def test_close_cancels_what_is_left_and_refuses_more(tmp_path: Path) -> None:
    backend = ScriptedBackend(size=1, default=Scripted(hold=True))
    running = backend.submit(spec("running", tmp_path))
    queued = backend.submit(spec("queued", tmp_path))
    closer = threading.Thread(target=backend.close)
    closer.start()
    closer.join(5)
    assert not closer.is_alive()
    assert running.result(0).status == "cancelled"
    assert (queued.result(0).status, queued.result(0).detail) == ("cancelled", "the engine is shutting down")
    with pytest.raises(RuntimeError):
        backend.submit(spec("late", tmp_path))


def test_a_job_id_is_held_once(backend: ScriptedBackend, tmp_path: Path) -> None:
    backend.plan("a", Scripted(hold=True))
    backend.submit(spec("a", tmp_path))
    with pytest.raises(ValueError, match="already"):
        backend.submit(spec("a", tmp_path))
    backend.release("a")


async def test_submit_async_reports_progress_on_the_callers_loop(
    backend: ScriptedBackend, tmp_path: Path
) -> None:
    loop_thread = threading.get_ident()
    seen: list[tuple[int, int]] = []
    backend.plan("a", Scripted(progress=2))
    handle = backend.submit_async(
        spec("a", tmp_path), lambda e: seen.append((e.iteration, threading.get_ident()))
    )
    outcome = await asyncio.wait_for(handle.wait(), 5)
    await asyncio.sleep(0)  # the last relayed callback runs on the loop's next turn
    assert outcome.status == "done"
    assert seen == [(1, loop_thread), (2, loop_thread)]
