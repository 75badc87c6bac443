"""Faults of the Bot API and of the engine: nothing is lost and the user is told the truth."""

from __future__ import annotations

import os
import signal
import sqlite3

from bot.context import BotApplication
from bot.i18n import texts_in
from storage import JobStatus, Store
from tests.bot.conftest import USER, BotRunner, eventually, jpeg, photos, text_containing
from tests.bot.fake_telegram import FakeTelegram

texts = texts_in("en")  # the fake's users speak English

JOB_TIMEOUT = 90.0


async def submit(fake: FakeTelegram, chat_id: int = USER) -> None:
    await fake.user_sends_photo(chat_id, chat_id, jpeg(32, 32, seed=1))
    await fake.user_sends_photo(chat_id, chat_id, jpeg(32, 32, seed=2))


async def job_status(app: BotApplication, job_id: int = 1) -> JobStatus | None:
    """The job's status once it has settled (a sent result is marked delivered just after)."""
    store: Store = app.bot_data.store
    job = await eventually(lambda: store.jobs.get(job_id), lambda j: j is None or j.status != JobStatus.DONE)
    return None if job is None else job.status


async def test_result_arrives_through_429_5xx_and_dropped_connections(
    fake: FakeTelegram, bot: BotApplication
) -> None:
    fake.fail_next("editMessageMedia", 429, retry_after=1)
    fake.fail_next("editMessageMedia", 502)
    fake.fail_next("editMessageMedia", "drop")
    await submit(fake)
    await fake.wait_for(lambda: photos(fake, USER), timeout=JOB_TIMEOUT)
    await fake.wait_for(lambda: [c for c in fake.calls("editMessageMedia") if c.status == 200])
    assert [c.status for c in fake.calls("editMessageMedia")] == [429, 502, 0, 200]
    assert len(photos(fake, USER)) == 1
    await fake.wait_for_message(USER, lambda m: m.text == texts.ready)
    assert await job_status(bot) == JobStatus.DELIVERED


async def test_progress_edits_are_dropped_not_queued(fake: FakeTelegram, runner: BotRunner) -> None:
    app = await runner.start(default_iterations=1500, progress_interval=0.2)
    fake.fail_next("editMessageCaption", 500, count=1000)
    await submit(fake)
    await fake.wait_for(lambda: photos(fake, USER), timeout=JOB_TIMEOUT)
    failed_edits = [c for c in fake.calls("editMessageCaption") if c.status == 500]
    assert failed_edits
    # Each failed edit was tried once: no retry storm behind the throttle.
    assert len(failed_edits) < 1500 * 0.2
    assert await job_status(app) == JobStatus.DELIVERED


async def test_download_failure_asks_to_resend(fake: FakeTelegram, bot: BotApplication) -> None:
    fake.fail_next("getFile", 500)
    await fake.user_sends_photo(USER, USER, jpeg(32, 32))
    await fake.wait_for_message(USER, text_containing(texts.download_failed))
    fake.fail_next("download", "drop")
    await fake.user_sends_photo(USER, USER, jpeg(32, 32))
    await fake.wait_for(lambda: [m for m in fake.messages(USER) if m.text == texts.download_failed][1:])
    await fake.user_sends_photo(USER, USER, jpeg(32, 32))
    await fake.wait_for_message(USER, text_containing(texts.content_received))


async def test_blocked_user_closes_the_job(fake: FakeTelegram, bot: BotApplication) -> None:
    await submit(fake)
    await fake.wait_for_message(USER, text_containing("Queued"))
    fake.block(USER)
    await fake.wait_for(
        lambda: [c for c in fake.calls("editMessageMedia") if c.status == 403], timeout=JOB_TIMEOUT
    )
    store: Store = bot.bot_data.store
    job = await eventually(
        lambda: store.jobs.get(1), lambda j: j is not None and j.status == JobStatus.FAILED
    )
    assert job.error == "the user blocked the bot"
    assert len(fake.calls("editMessageMedia")) == 1  # no retries into a blocked chat


async def test_killed_worker_job_is_retried_and_others_continue(
    fake: FakeTelegram, runner: BotRunner
) -> None:
    app = await runner.start(default_iterations=1500, engine_workers=2)
    await submit(fake, USER)
    other = USER + 1
    await submit(fake, other)
    # Both jobs are running, one per worker.
    await fake.wait_for(
        lambda: all(any("Painting" in (m.text or "") for m in fake.messages(c)) for c in (USER, other)),
        timeout=60,
    )
    # The chats are handled side by side, so either may have queued the first job.
    store: Store = app.bot_data.store
    [mine] = await store.jobs.active_for_chat(USER)
    [theirs] = await store.jobs.active_for_chat(other)
    pool = app.bot_data.dispatcher.pool
    victim = next(w for w in pool._workers if w.job is not None and w.job.spec.job_id == str(mine.id))
    os.kill(victim.process.pid, signal.SIGKILL)
    await fake.wait_for(
        lambda: any(v.text == texts.retrying for m in fake.messages(USER) for v in m.history), timeout=30
    )
    await fake.wait_for(lambda: photos(fake, USER) and photos(fake, other), timeout=JOB_TIMEOUT * 2)
    delivered = lambda j: j is not None and j.status == JobStatus.DELIVERED  # noqa: E731
    first = await eventually(lambda: store.jobs.get(mine.id), delivered)
    second = await eventually(lambda: store.jobs.get(theirs.id), delivered)
    assert (first.attempts, second.attempts) == (1, 0)
    assert len(photos(fake, USER)) == len(photos(fake, other)) == 1


async def test_a_send_that_times_out_is_retried_and_arrives_once(
    fake: FakeTelegram, bot: BotApplication
) -> None:
    # Longer than the client's read timeout, and never applied.
    fake.fail_next("editMessageMedia", "timeout", hold=7)
    await submit(fake)
    await fake.wait_for(lambda: photos(fake, USER), timeout=JOB_TIMEOUT)
    assert len(fake.calls("editMessageMedia")) == 2
    assert len(photos(fake, USER)) == 1
    assert await job_status(bot) == JobStatus.DELIVERED


async def test_a_locked_database_fails_clearly_and_changes_nothing(
    fake: FakeTelegram, bot: BotApplication
) -> None:
    store: Store = bot.bot_data.store
    await fake.user_sends_photo(USER, USER, jpeg(32, 32, seed=1))
    await fake.wait_for_message(USER, text_containing(texts.content_received))
    blocker = sqlite3.connect(store.files.db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock past the busy timeout
    try:
        await fake.user_sends_photo(USER, USER, jpeg(32, 32, seed=2))
        await fake.wait_for_message(USER, text_containing(texts.something_wrong), timeout=30)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    session = await store.sessions.get(USER)
    assert session.style_path is None
    assert await store.jobs.get(1) is None
    # Once the lock is gone the same chat carries on where it was.
    await fake.user_sends_photo(USER, USER, jpeg(32, 32, seed=2))
    await fake.wait_for(lambda: photos(fake, USER), timeout=JOB_TIMEOUT)


async def test_a_stop_during_a_send_lets_it_finish_and_records_it(
    fake: FakeTelegram, runner: BotRunner
) -> None:
    await runner.start()
    fake.fail_next("editMessageMedia", "timeout", hold=2, then_apply=True)  # slow, but it arrives
    await submit(fake)
    await fake.wait_for(lambda: fake.calls("editMessageMedia"), timeout=JOB_TIMEOUT)
    await runner.stop()  # while Telegram is still working on the photo
    assert len(photos(fake, USER)) == 1
    assert [c.status for c in fake.calls("editMessageMedia")] == [200]

    app = await runner.start()
    store: Store = app.bot_data.store
    job = await store.jobs.get(1)
    assert job is not None
    assert job.status == JobStatus.DELIVERED
    # A restart sends what it has not recorded at once; by the time the next picture is painted and
    # sent, it would have.
    await submit(fake)
    await eventually(lambda: store.jobs.get(2), lambda j: j is not None and j.status == JobStatus.DELIVERED)
    assert len(photos(fake, USER)) == 2
    assert [c.status for c in fake.calls("editMessageMedia")] == [200, 200]


async def test_progress_edits_are_dropped_while_telegram_throttles_the_chat(
    fake: FakeTelegram, runner: BotRunner
) -> None:
    app = await runner.start(default_iterations=400, progress_interval=0.1)
    # Telegram lets this chat have one message every two seconds; progress would come ten a second.
    fake.flood_limit(USER, per_second=0.5, burst=3, retry_after=2)
    await submit(fake)
    await fake.wait_for(lambda: photos(fake, USER), timeout=JOB_TIMEOUT)
    assert await job_status(app) == JobStatus.DELIVERED
    edits = fake.calls("editMessageCaption")
    captions = [c.params.get("caption") for c in edits]
    # No progress text was queued to go later, nor tried again after a 429: each went once, at most.
    assert len(captions) == len(set(captions))
    assert len(photos(fake, USER)) == 1
