"""The bot end to end with ENGINE_BACKEND=ray: a real local Ray cluster, the fake Bot API, tiny weights."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import replace

import pytest

from bot.config import Config
from bot.context import BotApplication
from bot.i18n import texts_in
from storage import JobStatus, Store
from tests.bot.conftest import USER, BotRunner, delivered, jpeg, photos, text_containing
from tests.bot.fake_telegram import FakeTelegram
from tests.bot.test_conversation import image_size

ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")

from engine.workers.ray_pool import RayPool  # noqa: E402 - only once ray is known to be there

texts = texts_in("en")  # the fake's users speak English

JOB_TIMEOUT = 90.0  # every deadline here waits on painting or on Ray's actors: `scaled`


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100_000_000)
    yield
    ray.shutdown()


@pytest.fixture
def config(config: Config, cluster: None) -> Config:
    return replace(config, engine_backend="ray")


async def submit(fake: FakeTelegram, chat_id: int, size: int = 32) -> None:
    await fake.user_sends_photo(chat_id, chat_id, jpeg(size, size, seed=1))
    await fake.user_sends_photo(chat_id, chat_id, jpeg(size, size, seed=2))


async def test_content_then_style_is_painted_by_a_ray_actor(fake: FakeTelegram, bot: BotApplication) -> None:
    assert isinstance(bot.bot_data.dispatcher.pool, RayPool)
    await fake.user_sends_photo(USER, USER, jpeg(96, 48, seed=1))
    await fake.wait_for_message(USER, text_containing(texts.content_received), timeout=5)
    await fake.user_sends_photo(USER, USER, jpeg(40, 40, seed=2))
    queued = await fake.wait_for_message(USER, text_containing("Queued"), timeout=5)
    result = await fake.wait_for(lambda: photos(fake, USER), timeout=JOB_TIMEOUT)
    # The actor got the images as bytes and sent the result back: 96×48 at max_image_size 64 is 64×32.
    assert image_size(result[0].data) == (64, 32)
    job = await delivered(bot.bot_data.store)
    assert job.attempts == 0
    assert result[0].message_id == queued.message_id  # the status picture became the painting
    await fake.wait_for_message(USER, lambda m: m.text == texts.ready, timeout=5)


async def test_progress_edits_and_cancel_go_through_ray(fake: FakeTelegram, runner: BotRunner) -> None:
    app = await runner.start(default_iterations=5000, progress_interval=0.3)
    await submit(fake, USER, 48)
    queued = await fake.wait_for_message(USER, text_containing("Queued"), timeout=5)
    await fake.wait_for(
        lambda: len([v for v in fake.messages(USER)[-1].edits if "Painting" in (v.text or "")]) >= 3,
        timeout=60,
    )
    await fake.user_presses_button(USER, USER, queued.message_id, "cancel:1")
    await fake.wait_for(
        lambda: (
            next(m for m in fake.messages(USER) if m.message_id == queued.message_id).text
            == texts.cancelled()
        ),
        timeout=20,
    )
    await fake.wait_for(lambda: not app.bot_data.dispatcher._running, timeout=20)
    assert app.bot_data.dispatcher.pool.busy() == 0
    store: Store = app.bot_data.store
    job = await store.jobs.get(1)
    assert job is not None
    assert job.status == JobStatus.CANCELLED
    assert photos(fake, USER) == []


async def test_killed_actor_job_is_requeued_and_delivered_once(fake: FakeTelegram, runner: BotRunner) -> None:
    app = await runner.start(default_iterations=1000, engine_workers=2)
    other = USER + 1
    await submit(fake, USER)
    await submit(fake, other)
    await fake.wait_for(
        lambda: all(any("Painting" in (m.text or "") for m in fake.messages(c)) for c in (USER, other)),
        timeout=60,
    )
    # The chats are handled side by side, so either may have queued the first job.
    store: Store = app.bot_data.store
    [mine] = await store.jobs.active_for_chat(USER)
    [theirs] = await store.jobs.active_for_chat(other)
    pool: RayPool = app.bot_data.dispatcher.pool
    victim = next(s for s in pool._slots if s.job is not None and s.job.spec.job_id == str(mine.id))
    os.kill(victim.pid, signal.SIGKILL)
    await fake.wait_for(
        lambda: any(v.text == texts.retrying for m in fake.messages(USER) for v in m.history),
        timeout=30,
    )
    await fake.wait_for(lambda: photos(fake, USER) and photos(fake, other), timeout=JOB_TIMEOUT * 2)
    first, second = await delivered(store, mine.id), await delivered(store, theirs.id)
    assert (first.attempts, second.attempts) == (1, 0)
    assert len(photos(fake, USER)) == len(photos(fake, other)) == 1
    assert victim.pid not in pool.worker_pids()
