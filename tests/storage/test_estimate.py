"""The queue's time estimate counts an iteration by the area of the job's output (`max_size`²)."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import Job, JobRequest, Store
from tests.storage.support import FakeClock


async def sized(store: Store, iterations: int, max_size: int, user_id: int = 1) -> Job:
    request = JobRequest(iterations=iterations, max_size=max_size)
    return await store.jobs.submit(user_id, user_id, Path("c.jpg"), [Path("s.jpg")], request)


async def finished(store: Store, clock: FakeClock, iterations: int, max_size: int, seconds: float) -> None:
    job = await sized(store, iterations, max_size)
    await store.jobs.claim_next()
    clock.advance(seconds)
    await store.jobs.finish(job.id, Path("r.png"))


async def test_an_iteration_costs_by_area(store: Store, clock: FakeClock) -> None:
    # 100 iterations at 256 px (a quarter of the reference area) in 5 s: 0.2 s per 512-px iteration.
    await finished(store, clock, 100, 256, 5.0)
    # 50 iterations at 1024 px in 40 s: 200 reference iterations, again 0.2 s each.
    await finished(store, clock, 50, 1024, 40.0)

    running = await sized(store, 300, 512, user_id=9)
    await store.jobs.claim_next()
    await store.jobs.update_progress(running.id, 100, 300)
    ahead = await sized(store, 400, 256)
    job = await sized(store, 100, 1024)

    position = await store.jobs.queue_position(job.id)

    assert position is not None
    assert position.position == 2
    # 200 left at 512 px + 400 at a quarter area + 100 at four times the area = 700 units at 0.2 s.
    assert position.estimate == pytest.approx(140.0)
    head = await store.jobs.queue_position(ahead.id, workers=2)
    assert head is not None
    assert head.estimate == pytest.approx((200 + 100) * 0.2 / 2)
