"""Submitting is one transaction with the session and inbox; fast jobs run in a lane of their own."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from storage import JobRequest, JobStatus, Store
from tests.storage.support import FakeClock, inbox_item

CONTENT = Path("/data/uploads/content.jpg")
STYLE = Path("/data/uploads/style.jpg")
SLOW = JobRequest(iterations=100, max_size=512)
FAST = JobRequest(iterations=100, max_size=512, fast=True)


async def test_submit_clears_the_session_and_the_inbox_row_with_the_job(store: Store) -> None:
    await store.sessions.set_content(7, 70, CONTENT, (40, 30))
    await store.sessions.set_style_upload(7, 70, STYLE)
    await store.inbox.add(inbox_item(555, 7))
    await store.inbox.add(inbox_item(556, 7))

    job = await store.jobs.submit(
        7, 70, CONTENT, [STYLE], JobRequest(iterations=5, max_size=512), handled_update=555, work=5.0
    )

    session = await store.sessions.get(7)
    assert (session.content_path, session.style_path) == (None, None)
    assert [item.update_id for item in await store.inbox.take_unfinished()] == [556]
    assert (await store.jobs.get(job.id)) == job


async def test_rollback_keeps_the_photos_when_the_insert_fails(tmp_path: Path) -> None:
    async with Store.open(tmp_path, clock=FakeClock()) as store:
        await store.sessions.set_content(7, 70, CONTENT, (40, 30))
        await store.inbox.add(inbox_item(555, 7))
        db = sqlite3.connect(tmp_path / "bot.sqlite3")
        db.execute("CREATE TRIGGER no_jobs BEFORE INSERT ON jobs BEGIN SELECT RAISE(ABORT, 'disk'); END")
        db.commit()
        db.close()
        try:
            await store.jobs.submit(
                7, 70, CONTENT, [STYLE], JobRequest(iterations=5, max_size=512), handled_update=555, work=5.0
            )
        except sqlite3.IntegrityError:
            pass
        else:
            raise AssertionError("the insert should have failed")
        assert (await store.sessions.get(7)).content_path == CONTENT
        assert [item.update_id for item in await store.inbox.take_unfinished()] == [555]


async def test_fast_jobs_are_claimed_in_their_own_lane(store: Store) -> None:
    slow = await store.jobs.submit(1, 1, CONTENT, [STYLE], SLOW, work=100.0)
    fast = await store.jobs.submit(2, 2, CONTENT, [STYLE], FAST, work=100.0)

    claimed_fast = await store.jobs.claim_next(fast=True)
    assert claimed_fast is not None
    assert claimed_fast.id == fast.id
    assert await store.jobs.claim_next(fast=True) is None
    claimed = await store.jobs.claim_next()
    assert claimed is not None
    assert claimed.id == slow.id
    assert await store.jobs.claim_next() is None


async def test_fast_jobs_do_not_count_in_the_estimates_of_the_other_lane(
    store: Store, clock: FakeClock
) -> None:
    for fast in (False, True):
        done = await store.jobs.submit(9, 9, CONTENT, [STYLE], FAST if fast else SLOW, work=100.0)
        await store.jobs.claim_next(fast=fast)
        clock.advance(100.0 if not fast else 1.0)
        await store.jobs.finish(done.id, Path("/r.png"))
    running_slow = await store.jobs.submit(1, 1, CONTENT, [STYLE], SLOW, work=100.0)
    await store.jobs.claim_next()
    queued_fast = await store.jobs.submit(2, 2, CONTENT, [STYLE], FAST, work=100.0)
    queued_slow = await store.jobs.submit(3, 3, CONTENT, [STYLE], SLOW, work=100.0)

    fast_position = await store.jobs.queue_position(queued_fast.id)
    slow_position = await store.jobs.queue_position(queued_slow.id)
    assert fast_position is not None
    assert slow_position is not None
    # The fast job is first in its lane and its estimate is one fast job's time, not the slow ones'.
    assert (fast_position.position, fast_position.running, fast_position.estimate) == (1, 0, 1.0)
    # The slow job waits for the running slow job's 100 iterations and its own: 2 × 100 s.
    assert (slow_position.position, slow_position.running, slow_position.estimate) == (1, 1, 200.0)
    assert (await store.jobs.get(running_slow.id)).status == JobStatus.RUNNING  # type: ignore[union-attr]
