"""What a restart finds: running jobs queued again or failed, done jobs still to deliver."""

from __future__ import annotations

from pathlib import Path

from storage import MAX_ATTEMPTS, JobRequest, JobStatus, RecoveryReport, Store
from tests.storage.support import FakeClock, submit


async def test_restart_requeues_running_and_reports_undelivered(tmp_path: Path, clock: FakeClock) -> None:
    async with Store.open(tmp_path, clock=clock) as store:
        assert store.recovery == RecoveryReport()
        done = await submit(store, user_id=1)
        running = await submit(store, user_id=2)
        queued = await submit(store, user_id=3)
        delivered = await submit(store, user_id=4)
        for _ in range(4):
            await store.jobs.claim_next()
        await store.jobs.update_progress(running.id, 40, 100)
        await store.jobs.finish(done.id, Path("/r/done.png"))
        await store.jobs.finish(delivered.id, Path("/r/delivered.png"))
        await store.jobs.mark_delivered(delivered.id)
        await store.jobs.fail(queued.id, "boom")
        queued = await submit(store, user_id=3)
        # A crash: the store is never closed cleanly and the worker is gone.

    async with Store.open(tmp_path, clock=clock) as store:
        report = store.recovery
        assert report.requeued == (running.id,)
        assert report.failed == ()
        assert [job.id for job in report.undelivered] == [done.id]
        assert report.undelivered[0].result_path == Path("/r/done.png")
        again = await store.jobs.get(running.id)
        assert again is not None
        assert (again.status, again.attempts, again.progress, again.error) == (
            JobStatus.QUEUED,
            1,
            0,
            "interrupted by a restart",
        )
        claimed = await store.jobs.claim_next()
        assert claimed is not None
        assert claimed.id == running.id  # it keeps its place ahead of later jobs

    async with Store.open(tmp_path, clock=clock) as store:
        assert store.recovery.requeued == (running.id,)
        assert [job.id for job in store.recovery.undelivered] == [done.id]


async def test_restart_fails_a_job_out_of_attempts(tmp_path: Path) -> None:
    async with Store.open(tmp_path) as store:
        job = await submit(store)
    for _ in range(MAX_ATTEMPTS):
        async with Store.open(tmp_path) as store:
            claimed = await store.jobs.claim_next()
            assert claimed is not None
            assert claimed.id == job.id

    async with Store.open(tmp_path) as store:
        failed = await store.jobs.get(job.id)
        assert failed is not None
        assert store.recovery == RecoveryReport(requeued=(), failed=(failed,), undelivered=())
        assert (failed.status, failed.attempts) == (JobStatus.FAILED, MAX_ATTEMPTS)
        assert await store.jobs.claim_next() is None


async def test_second_process_can_skip_recovery(tmp_path: Path) -> None:
    async with Store.open(tmp_path) as first:
        job = await submit(first)
        await first.jobs.claim_next()
        async with Store.open(tmp_path, recover=False) as second:
            assert second.recovery == RecoveryReport()
            running = await second.jobs.get(job.id)
            assert running is not None
            assert running.status == JobStatus.RUNNING


async def test_restart_opens_a_job_held_while_its_status_message_was_being_sent(tmp_path: Path) -> None:
    async with Store.open(tmp_path) as store:
        held = await store.jobs.submit(
            1,
            1,
            Path("/u/c.jpg"),
            [Path("/u/s.jpg")],
            JobRequest(iterations=5, max_size=64),
            held=True,
            work=5.0,
        )
        assert await store.jobs.claim_next() is None
        # A crash before the status message was recorded.

    async with Store.open(tmp_path) as store:
        claimed = await store.jobs.claim_next()
        assert claimed is not None
        assert (claimed.id, claimed.status_message_id) == (held.id, None)
