"""Users with their quota counts, and the admins' stats."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from storage import JobStatus, Store, User
from tests.storage.support import START, FakeClock, submit

DAY = 86_400.0


async def test_touch_records_first_and_last_seen(store: Store, clock: FakeClock) -> None:
    assert await store.users.get(5) is None

    first = await store.users.touch(5, language="de")
    clock.advance(100)
    again = await store.users.touch(5)

    assert first == User(5, START, START, "de", active_jobs=0, jobs_today=0)
    assert again == User(5, START, START + 100, "de", active_jobs=0, jobs_today=0)
    assert await store.users.get(5) == again


async def test_quota_counts(store: Store, clock: FakeClock) -> None:
    yesterday = await submit(store, user_id=5)
    clock.advance(DAY)
    done = await submit(store, user_id=5)
    await submit(store, user_id=5)
    await submit(store, user_id=6)
    await store.jobs.fail(yesterday.id, "boom")
    await store.jobs.claim_next()
    await store.jobs.finish(done.id, Path("r.png"))
    await store.jobs.claim_next()

    user = await store.users.get(5)

    assert user is not None
    assert (user.first_seen, user.active_jobs, user.jobs_today) == (START, 1, 2)


async def test_stats(store: Store, clock: FakeClock) -> None:
    await store.users.touch(1)
    clock.advance(DAY)
    fast = await submit(store, user_id=2)
    slow = await submit(store, user_id=3)
    await submit(store, user_id=3)
    await store.jobs.claim_next()
    clock.advance(10)
    await store.jobs.finish(fast.id, Path("r.png"))
    await store.jobs.mark_delivered(fast.id)
    await store.jobs.claim_next()
    clock.advance(30)
    await store.jobs.finish(slow.id, Path("r.png"))

    stats = await store.stats()

    assert dict(stats.jobs_by_status) == {
        JobStatus.QUEUED: 1,
        JobStatus.RUNNING: 0,
        JobStatus.DONE: 1,
        JobStatus.DELIVERED: 1,
        JobStatus.FAILED: 0,
        JobStatus.CANCELLED: 0,
    }
    assert stats.mean_duration == pytest.approx(20.0)  # 10 s and 30 s
    assert (stats.users_today, stats.jobs_today) == (2, 3)


async def test_stats_of_an_empty_store(store: Store) -> None:
    stats = await store.stats()

    assert set(stats.jobs_by_status.values()) == {0}
    assert (stats.mean_duration, stats.users_today, stats.jobs_today) == (None, 0, 0)


async def test_the_daily_limit_rolls_with_each_picture(store: Store, clock: FakeClock) -> None:
    """Three pictures a day: the fourth waits until the first of the last three is 24 hours old."""
    for _ in range(3):
        assert await store.users.daily_wait(5, limit=3) is None
        await store.users.record_upload(5)
        clock.advance(3600)

    assert await store.users.daily_wait(5, limit=3) == DAY - 3 * 3600  # the first was sent 3 h ago
    assert await store.users.daily_wait(6, limit=3) is None  # another user's count is their own
    assert await store.users.daily_wait(5, limit=4) is None
    clock.advance(DAY - 3 * 3600)
    assert await store.users.daily_wait(5, limit=3) is None
    await store.users.record_upload(5)
    assert await store.users.daily_wait(5, limit=3) == 3600  # now the second is the oldest of three


async def test_purge_forgets_uploads_older_than_a_day(store: Store, clock: FakeClock) -> None:
    await store.users.record_upload(5)
    clock.advance(DAY + 1)
    await store.users.record_upload(5)
    await store.users.record_upload(6)

    await store.purge_files()

    with sqlite3.connect(store.files.db_path) as conn:
        rows = conn.execute("SELECT user_id, at FROM uploads ORDER BY user_id").fetchall()
    conn.close()
    assert rows == [(5, START + DAY + 1), (6, START + DAY + 1)]
