"""Every job transition, claim order, progress, cancellation and queue estimates."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from storage import MAX_ATTEMPTS, JobRequest, JobStatus, Store
from tests.storage.support import REQUEST, START, FakeClock, submit


async def test_submit_freezes_the_request_and_queues(store: Store) -> None:
    job = await submit(store, user_id=7, iterations=250)

    assert job.status == JobStatus.QUEUED
    assert (job.chat_id, job.user_id, job.iterations) == (7, 7, 250)
    assert job.request == JobRequest(iterations=250, max_size=512, preserve_colors=True, style_strength=1.5)
    assert job.content_path == Path("/data/uploads/content.jpg")
    assert job.style_paths == (Path("/data/uploads/style.jpg"),)
    assert (job.attempts, job.progress, job.error, job.result_path) == (0, 0, None, None)
    assert job.created_at == START
    assert await store.jobs.get(job.id) == job


async def test_every_choice_of_the_request_reads_back(store: Store) -> None:
    request = JobRequest(
        iterations=42,
        max_size=1536,
        optimizer="adam",
        initial="adain",
        margin=24,
        preserve_colors=True,
        style_strength=0.25,
        fast=True,
        brush="large",
    )
    job = await store.jobs.submit(3, 4, Path("c.jpg"), [Path("s1.jpg"), Path("s2.jpg")], request, work=1.0)

    claimed = await store.jobs.claim_next(fast=True)

    assert claimed is not None
    assert (job.request, claimed.request, claimed.style_paths) == (
        request,
        request,
        (Path("s1.jpg"), Path("s2.jpg")),
    )
    assert (claimed.progress, claimed.progress_total) == (0, 42)


@pytest.mark.parametrize(
    ("choices", "message"),
    [
        ({"iterations": 0}, "iterations must be a positive int, got 0"),
        ({"iterations": True}, "iterations must be a positive int, got True"),
        ({"iterations": 2.5}, "iterations must be a positive int, got 2.5"),
        ({"max_size": 0}, "max_size must be a positive number of pixels, got 0"),
        ({"max_size": -5}, "max_size must be a positive number of pixels, got -5"),
        ({"optimizer": "sgd"}, "optimizer must be one of lbfgs, adam, got 'sgd'"),
        ({"initial": "noise"}, "initial must be one of content, adain, got 'noise'"),
        ({"margin": -1}, "margin must be a non-negative number of pixels, got -1"),
        ({"style_strength": 0.0}, r"style strength must be in \(0, 100\], got 0.0"),
        ({"style_strength": 100.5}, r"style strength must be in \(0, 100\], got 100.5"),
        ({"style_strength": float("nan")}, r"style strength must be in \(0, 100\], got nan"),
        ({"style_strength": float("inf")}, r"style strength must be in \(0, 100\], got inf"),
        ({"brush": "huge"}, "brush must be one of small, medium, large, got 'huge'"),
    ],
)
def test_a_request_out_of_range_is_refused(choices: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        JobRequest(**({"iterations": 10, "max_size": 512} | choices))


def test_a_request_at_its_bounds_is_accepted() -> None:
    request = JobRequest(iterations=1, max_size=1, margin=0, style_strength=100)

    assert (request.optimizer, request.initial, request.preserve_colors, request.fast, request.brush) == (
        "lbfgs",
        "content",
        False,
        False,
        "medium",
    )


async def test_submit_without_a_style_is_refused_and_queues_nothing(store: Store) -> None:
    with pytest.raises(ValueError, match="at least one style image"):
        await store.jobs.submit(1, 1, Path("c.jpg"), [], JobRequest(iterations=5, max_size=512), work=5.0)

    assert await store.jobs.claim_next() is None


async def test_happy_path_queued_running_done_delivered(store: Store, clock: FakeClock) -> None:
    job = await submit(store, iterations=10)

    clock.advance(5)
    claimed = await store.jobs.claim_next()
    assert claimed is not None
    assert (claimed.id, claimed.status, claimed.started_at) == (job.id, JobStatus.RUNNING, START + 5)
    assert (claimed.progress, claimed.progress_total) == (0, 10)

    assert await store.jobs.update_progress(job.id, 4, 10) is True
    running = await store.jobs.get(job.id)
    assert running is not None
    assert (running.progress, running.progress_total) == (4, 10)

    clock.advance(20)
    assert await store.jobs.finish(job.id, Path("/data/results/job-1.png")) is True
    done = await store.jobs.get(job.id)
    assert done is not None
    assert (done.status, done.result_path, done.finished_at, done.progress) == (
        JobStatus.DONE,
        Path("/data/results/job-1.png"),
        START + 25,
        10,
    )
    assert await store.jobs.active_for_chat(job.chat_id) == [done]

    clock.advance(1)
    assert await store.jobs.mark_delivered(job.id) is True
    delivered = await store.jobs.get(job.id)
    assert delivered is not None
    assert (delivered.status, delivered.delivered_at) == (JobStatus.DELIVERED, START + 26)
    assert await store.jobs.active_for_chat(job.chat_id) == []
    assert await store.jobs.claim_next() is None


@pytest.mark.parametrize("stage", ["queued", "running", "done"])
async def test_fail_from_each_unfinished_status(store: Store, stage: str) -> None:
    job = await _job_at(store, stage)

    assert await store.jobs.fail(job, "out of memory") is True
    failed = await store.jobs.get(job)
    assert failed is not None
    assert (failed.status, failed.error) == (JobStatus.FAILED, "out of memory")
    assert await store.jobs.fail(job, "again") is False


@pytest.mark.parametrize("stage", ["queued", "running"])
async def test_cancel_queued_or_running(store: Store, stage: str) -> None:
    job = await _job_at(store, stage)

    assert await store.jobs.cancel(job) is True
    cancelled = await store.jobs.get(job)
    assert cancelled is not None
    assert cancelled.status == JobStatus.CANCELLED
    # The worker of a cancelled running job learns it here, and its result is refused.
    assert await store.jobs.update_progress(job, 5, 100) is False
    assert await store.jobs.finish(job, Path("r.png")) is False
    assert await store.jobs.cancel(job) is False
    assert await store.jobs.claim_next() is None


@pytest.mark.parametrize(
    ("stage", "action"),
    [
        ("queued", "finish"),
        ("queued", "deliver"),
        ("queued", "requeue"),
        ("running", "deliver"),
        ("done", "finish"),
        ("done", "cancel"),
        ("done", "requeue"),
        ("delivered", "fail"),
        ("delivered", "cancel"),
        ("delivered", "deliver"),
        ("failed", "cancel"),
        ("cancelled", "fail"),
    ],
)
async def test_invalid_transitions_change_nothing(store: Store, stage: str, action: str) -> None:
    job = await _job_at(store, stage)
    before = await store.jobs.get(job)

    if action == "finish":
        assert await store.jobs.finish(job, Path("r.png")) is False
    elif action == "deliver":
        assert await store.jobs.mark_delivered(job) is False
    elif action == "requeue":
        assert await store.jobs.requeue(job, "worker died") is None
    elif action == "cancel":
        assert await store.jobs.cancel(job) is False
    else:
        assert await store.jobs.fail(job, "error") is False
    assert await store.jobs.get(job) == before


async def test_missing_job(store: Store) -> None:
    assert await store.jobs.get(999) is None
    assert await store.jobs.cancel(999) is False
    assert await store.jobs.queue_position(999) is None


async def test_requeue_after_worker_death_until_failed(store: Store) -> None:
    job = await submit(store)

    for attempt in range(1, MAX_ATTEMPTS):
        await store.jobs.claim_next()
        await store.jobs.update_progress(job.id, 50, 100)
        requeued = await store.jobs.requeue(job.id, "worker exited with -9")
        assert requeued is not None
        assert (requeued.status, requeued.attempts, requeued.progress, requeued.started_at) == (
            JobStatus.QUEUED,
            attempt,
            0,
            None,
        )

    await store.jobs.claim_next()
    failed = await store.jobs.requeue(job.id, "worker exited with -9")
    assert failed is not None
    assert (failed.status, failed.attempts, failed.error) == (
        JobStatus.FAILED,
        MAX_ATTEMPTS,
        "worker exited with -9",
    )
    assert await store.jobs.claim_next() is None


async def test_claim_is_fifo_but_one_running_job_per_user_while_others_wait(store: Store) -> None:
    a1, a2, a3 = [await submit(store, user_id=1) for _ in range(3)]
    b1 = await submit(store, user_id=2)
    c1 = await submit(store, user_id=3)

    order = []
    while (job := await store.jobs.claim_next()) is not None:
        order.append(job.id)

    # a1 first; then b1 and c1 although a2 is older, because user 1 is already running a job;
    # then user 1's others, as nobody else waits.
    assert order == [a1.id, b1.id, c1.id, a2.id, a3.id]


async def test_active_and_running_lists(store: Store) -> None:
    first = await submit(store, user_id=1, chat_id=10)
    second = await submit(store, user_id=1, chat_id=10)
    other_chat = await submit(store, user_id=2, chat_id=20)
    await store.jobs.claim_next()
    await store.jobs.finish(first.id, Path("r.png"))
    await store.jobs.claim_next()

    assert [job.id for job in await store.jobs.active_for_chat(10)] == [first.id, second.id]
    assert [job.status for job in await store.jobs.active_for_chat(10)] == [JobStatus.DONE, JobStatus.RUNNING]
    await store.jobs.mark_delivered(first.id)
    assert [job.id for job in await store.jobs.active_for_chat(10)] == [second.id]
    assert [job.id for job in await store.jobs.active_for_chat(20)] == [other_chat.id]


async def test_queue_position_and_estimate(store: Store, clock: FakeClock) -> None:
    for _ in range(2):  # two finished jobs: 100 iterations in 10 s → 0.1 s per iteration
        job = await submit(store, iterations=100)
        await store.jobs.claim_next()
        clock.advance(10)
        await store.jobs.finish(job.id, Path("r.png"))

    running = await submit(store, user_id=9, iterations=300)
    await store.jobs.claim_next()
    await store.jobs.update_progress(running.id, 100, 300)
    first = await submit(store, iterations=100)
    second = await submit(store, iterations=200)

    position = await store.jobs.queue_position(second.id)
    assert position is not None
    assert (position.position, position.running) == (2, 1)
    # 200 left of the running job + 100 ahead + its own 200, at 0.1 s each.
    assert position.estimate == pytest.approx(50.0)
    two_workers = await store.jobs.queue_position(second.id, workers=2)
    assert two_workers is not None
    assert two_workers.estimate == pytest.approx(25.0)
    head = await store.jobs.queue_position(first.id)
    assert head is not None
    assert head.position == 1
    assert await store.jobs.queue_position(running.id) is None


async def test_the_estimate_counts_each_jobs_own_work(store: Store, clock: FakeClock) -> None:
    """A job's work is what the bot reckoned (a big painting's coarse to fine), not its iterations."""

    async def queue(work: float) -> int:
        job = await store.jobs.submit(
            1, 1, Path("/data/c.jpg"), [Path("/data/s.jpg")], replace(REQUEST, iterations=100), work=work
        )
        return job.id

    finished = await queue(work=400.0)
    await store.jobs.claim_next()
    clock.advance(40)  # 400 units in 40 s: 0.1 s per unit
    await store.jobs.finish(finished, Path("r.png"))
    running = await queue(work=300.0)
    await store.jobs.claim_next()
    before = await queue(work=1000.0)
    mine = await queue(work=50.0)

    position = await store.jobs.queue_position(mine)
    assert position is not None
    # The running job has reported no progress yet: all its work is left.
    assert position.estimate == pytest.approx((300 + 1000 + 50) * 0.1)
    await store.jobs.update_progress(running, 120, 160)  # coarse to fine: 160 iterations in all
    position = await store.jobs.queue_position(mine)
    assert position is not None
    assert position.estimate == pytest.approx((300 * 40 / 160 + 1000 + 50) * 0.1)
    assert before < mine


async def test_queue_position_without_history_has_no_estimate(store: Store) -> None:
    job = await submit(store)

    position = await store.jobs.queue_position(job.id)

    assert position is not None
    assert (position.position, position.running, position.estimate) == (1, 0, None)


async def test_the_callers_pace_estimates_until_a_job_of_the_lane_has_finished(
    store: Store, clock: FakeClock
) -> None:
    first = await submit(store, iterations=100)
    second = await submit(store, iterations=100)

    # Nothing has finished: the caller's pace (2 s per unit) over both jobs' work, on two workers.
    position = await store.jobs.queue_position(second.id, workers=2, pace=2.0)
    assert position is not None
    assert position.estimate == pytest.approx((100 + 100) * 2.0 / 2)

    await store.jobs.claim_next()
    clock.advance(10)  # 100 units in 10 s: history, 0.1 s per unit, now wins over the caller's pace
    await store.jobs.finish(first.id, Path("r.png"))
    position = await store.jobs.queue_position(second.id, pace=2.0)
    assert position is not None
    assert position.estimate == pytest.approx(100 * 0.1)


async def _job_at(store: Store, stage: str) -> int:
    """A job brought to `stage` by the normal transitions; returns its id."""
    job = await submit(store)
    if stage == "queued":
        return job.id
    await store.jobs.claim_next()
    if stage == "running":
        return job.id
    if stage == "failed":
        await store.jobs.fail(job.id, "boom")
        return job.id
    if stage == "cancelled":
        await store.jobs.cancel(job.id)
        return job.id
    await store.jobs.finish(job.id, Path("r.png"))
    if stage == "delivered":
        await store.jobs.mark_delivered(job.id)
    return job.id


async def test_release_requeues_without_counting_an_attempt(store: Store) -> None:
    job = await submit(store)
    assert not await store.jobs.release(job.id)  # only a running job can be released

    await store.jobs.claim_next()
    await store.jobs.update_progress(job.id, 40, 100)
    assert await store.jobs.release(job.id)

    released = await store.jobs.get(job.id)
    assert released is not None
    assert (released.status, released.attempts, released.progress, released.started_at) == (
        JobStatus.QUEUED,
        0,
        0,
        None,
    )
    claimed = await store.jobs.claim_next()
    assert claimed is not None
    assert claimed.id == job.id


async def test_a_held_job_is_claimed_only_once_opened_with_its_status_message(store: Store) -> None:
    held = await store.jobs.submit(
        1, 1, Path("/u/c.jpg"), [Path("/u/s.jpg")], REQUEST, content_size=(640, 480), held=True, work=1.0
    )
    assert held.content_size == (640, 480)
    assert await store.jobs.claim_next() is None
    position = await store.jobs.queue_position(held.id)
    assert position is not None
    assert position.position == 1  # it is in the queue, only not claimable yet
    opened = await store.jobs.open(held.id, 77)
    assert (opened.status_message_id, opened.status) == (77, JobStatus.QUEUED)
    claimed = await store.jobs.claim_next()
    assert claimed is not None
    assert (claimed.id, claimed.status_message_id) == (held.id, 77)


async def test_a_lost_result_is_painted_again_until_out_of_attempts(store: Store) -> None:
    job = await submit(store)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        await store.jobs.claim_next()
        assert await store.jobs.finish(job.id, Path(f"/r/{attempt}.png"), shrunk_to=300) is True
        done = await store.jobs.get(job.id)
        assert done is not None
        assert (done.result_path, done.shrunk_to) == (Path(f"/r/{attempt}.png"), 300)
        again = await store.jobs.repaint(job.id, "result unreadable")
        assert again is not None
        expected = JobStatus.QUEUED if attempt < MAX_ATTEMPTS else JobStatus.FAILED
        assert (again.status, again.attempts, again.result_path) == (expected, attempt, None)
    assert await store.jobs.repaint(job.id, "again") is None  # only a done job is painted again
