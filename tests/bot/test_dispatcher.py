"""The dispatcher's requeue, cancel, failure and delivery paths, fast: a scripted backend, no engine.

The store is a real SQLite file and the chat is the fake Bot API server; only the engine is scripted.
"""

from __future__ import annotations

import asyncio
import io
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image
from telegram import Bot

from bot.config import Config
from bot.delivery import Messenger
from bot.dispatcher import Dispatcher
from bot.i18n import texts_in
from bot.painting import BRUSH_SCALES, style_params
from engine.images import ImageProblem
from engine.workers.jobs import Failure
from engine.workers.scripted import Scripted, ScriptedBackend
from storage import BRUSHES, Job, JobRequest, JobStatus, Store
from tests.bot.conftest import USER, eventually, photos
from tests.bot.fake_telegram import FakeTelegram

texts = texts_in("en")  # the fake's users speak English

REQUEST = JobRequest(iterations=10, max_size=64)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store.open(tmp_path / "data") as opened:
        yield opened


@pytest.fixture
async def telegram(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(fake.token, base_url=fake.base_url, base_file_url=fake.base_file_url) as bot:
        yield bot


@pytest.fixture
async def backend(store: Store, telegram: Bot) -> AsyncIterator[ScriptedBackend]:
    with ScriptedBackend(size=1) as scripted:
        yield scripted


@pytest.fixture
async def dispatcher(
    store: Store, telegram: Bot, backend: ScriptedBackend, fake: FakeTelegram
) -> AsyncIterator[Dispatcher]:
    config = Config(token=fake.token, progress_interval=0.0)
    running = Dispatcher(telegram, store, backend, config)
    running.start()
    yield running
    await running.stop()


async def queue(store: Store, telegram: Bot, tmp_path: Path, request: JobRequest = REQUEST) -> Job:
    """A job as the bot queues one: its inputs on disk and a status picture in the chat."""
    photo = tmp_path / "photo.png"
    Image.new("RGB", (32, 32), (10, 120, 200)).save(photo)
    job = await store.jobs.submit(
        USER, USER, photo, [photo], request, content_size=(32, 32), held=True, work=1.0
    )
    picture = io.BytesIO()
    Image.new("RGB", (32, 32)).save(picture, "JPEG")
    status = await telegram.send_photo(USER, picture.getvalue(), caption=texts.queued(1, None))
    job = await store.jobs.open(job.id, status.message_id)
    return job


async def settled(store: Store, job_id: int, status: JobStatus) -> Job:
    job = await eventually(lambda: store.jobs.get(job_id), lambda j: j is not None and j.status == status)
    assert job is not None
    return job


async def test_a_crashed_worker_requeues_the_job_which_then_arrives(
    store: Store,
    telegram: Bot,
    backend: ScriptedBackend,
    dispatcher: Dispatcher,
    fake: FakeTelegram,
    tmp_path: Path,
) -> None:
    backend.plan("1", Scripted(crashed=True))
    job = await queue(store, telegram, tmp_path)
    dispatcher.wake()
    delivered = await settled(store, job.id, JobStatus.DELIVERED)
    assert delivered.attempts == 1
    [status] = fake.messages(USER)[:1]
    assert texts.retrying in [v.text for v in status.history]
    assert len(photos(fake, USER)) == 1
    assert [spec.job_id for spec in backend.submitted] == ["1", "1"]


async def test_cancel_while_running_stops_the_job_and_says_so(
    store: Store,
    telegram: Bot,
    backend: ScriptedBackend,
    dispatcher: Dispatcher,
    fake: FakeTelegram,
    tmp_path: Path,
) -> None:
    backend.plan("1", Scripted(progress=2, hold=True))
    job = await queue(store, telegram, tmp_path)
    dispatcher.wake()
    await settled(store, job.id, JobStatus.RUNNING)
    await fake.wait_for(lambda: "Painting" in (fake.messages(USER)[0].text or ""))
    assert await dispatcher.cancel(job.id)
    await settled(store, job.id, JobStatus.CANCELLED)
    await fake.wait_for(lambda: fake.messages(USER)[0].text == texts.cancelled())
    assert backend.busy() == 0
    assert photos(fake, USER) == []


async def test_a_bad_image_is_worded_for_the_user(
    store: Store,
    telegram: Bot,
    backend: ScriptedBackend,
    dispatcher: Dispatcher,
    fake: FakeTelegram,
    tmp_path: Path,
) -> None:
    backend.plan("1", Scripted(failure=Failure.BAD_IMAGE, problem=ImageProblem.DAMAGED))
    job = await queue(store, telegram, tmp_path)
    dispatcher.wake()
    await settled(store, job.id, JobStatus.FAILED)
    await fake.wait_for(lambda: "damaged or incomplete" in (fake.messages(USER)[0].text or ""))
    assert (fake.messages(USER)[0].text or "").startswith("Sorry, I couldn't paint this one: the photo is")


async def test_jobs_wait_queued_while_workers_cannot_start(
    store: Store, telegram: Bot, backend: ScriptedBackend, fake: FakeTelegram, tmp_path: Path
) -> None:
    config = Config(token=fake.token, progress_interval=0.0)
    with ScriptedBackend(size=1) as previews:
        dispatcher = Dispatcher(telegram, store, backend, config, previews)
        dispatcher.start()
        try:
            backend.fail_starts("the GPU is gone")
            job = await queue(store, telegram, tmp_path)
            fast = await queue(store, telegram, tmp_path, replace(REQUEST, fast=True))
            dispatcher.wake()
            # Each pass looks at the paintings' lane before the fast one: once the fast job is claimed,
            # the painting has been looked at with its workers down.
            await settled(store, fast.id, JobStatus.DELIVERED)
            assert not dispatcher.lane(False).healthy
            assert backend.submitted == []  # never claimed, so never shown as running
            assert (await store.jobs.get(job.id)).status == JobStatus.QUEUED  # type: ignore[union-attr]
            backend.recover()
            dispatcher.wake()
            await settled(store, job.id, JobStatus.DELIVERED)
        finally:
            await dispatcher.stop()


async def test_jobs_run_on_the_ready_workers_while_one_cannot_start(
    store: Store, telegram: Bot, fake: FakeTelegram, tmp_path: Path
) -> None:
    with ScriptedBackend(size=2, default=Scripted(hold=True)) as backend:
        backend.fail_starts("the GPU is gone", workers=1)
        running = Dispatcher(telegram, store, backend, Config(token=fake.token, progress_interval=0.0))
        running.start()
        try:
            first = await queue(store, telegram, tmp_path)
            second = await queue(store, telegram, tmp_path)
            running.wake()
            await settled(store, first.id, JobStatus.RUNNING)
            lane = running.lane(False)
            assert (lane.healthy, lane.ready, lane.size) == (True, 1, 2)
            # One ready worker: one job claimed; the other stays queued in the store, not in the backend.
            assert [spec.job_id for spec in backend.submitted] == [str(first.id)]
            assert (await store.jobs.get(second.id)).status == JobStatus.QUEUED  # type: ignore[union-attr]
            assert backend.release(str(first.id))
            await settled(store, first.id, JobStatus.DELIVERED)
            await eventually(lambda: asyncio.sleep(0, backend.release(str(second.id))), bool)
            await settled(store, second.id, JobStatus.DELIVERED)
        finally:
            await running.stop()


async def test_the_operators_engine_choices_reach_the_engine_with_every_job(
    store: Store, telegram: Bot, backend: ScriptedBackend, fake: FakeTelegram, tmp_path: Path
) -> None:
    config = Config(
        token=fake.token,
        progress_interval=0.0,
        precision="float32",
        style_loss="sliced",
        gram_layers=3,
        average_decay=0.9,
    )
    running = Dispatcher(telegram, store, backend, config)
    running.start()
    try:
        job = await queue(store, telegram, tmp_path)
        running.wake()
        await settled(store, job.id, JobStatus.DELIVERED)
    finally:
        await running.stop()
    [spec] = backend.submitted
    params = spec.params
    assert (params.precision, params.style_loss, params.gram_layers, params.average_decay) == (
        "float32",
        "sliced",
        3,
        0.9,
    )
    assert spec.params.max_size == REQUEST.max_size


async def test_the_brush_reaches_the_engine_as_the_style_scale(
    store: Store, telegram: Bot, backend: ScriptedBackend, dispatcher: Dispatcher, tmp_path: Path
) -> None:
    for number, brush in enumerate(("large", "small"), start=1):
        await queue(store, telegram, tmp_path, JobRequest(iterations=10, max_size=64, brush=brush))
        dispatcher.wake()
        await settled(store, number, JobStatus.DELIVERED)
    assert [spec.params.style_scales for spec in backend.submitted] == [(1.6,), (0.6,)]


def test_every_brush_has_a_style_scale_growing_with_it() -> None:
    assert tuple(BRUSH_SCALES) == BRUSHES
    scales = [style_params(JobRequest(10, 64, brush=brush)).style_scales for brush in BRUSHES]
    assert scales == [(0.6,), (1.0,), (1.6,)]


async def test_a_jobs_language_is_its_users_and_english_when_the_store_cannot_say(
    store: Store, telegram: Bot, tmp_path: Path
) -> None:
    job = await queue(store, telegram, tmp_path)
    messenger = Messenger(telegram, store)
    assert (await messenger.texts(job)).language == "en"  # never seen with a language
    await store.users.touch(USER, "ru-RU")
    assert (await messenger.texts(job)).language == "ru"
    await store.close()
    assert (await messenger.texts(job)).language == "en"  # cosmetic: no error reaches the job


async def test_a_full_disk_when_a_job_ends_delays_its_delivery_and_loses_nothing(
    dispatcher: Dispatcher,
    store: Store,
    telegram: Bot,
    fake: FakeTelegram,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    finish = store.jobs.finish
    refusals = []

    async def full_disk(job_id: int, result_path: Path, shrunk_to: int | None = None) -> bool:
        if len(refusals) < 2:
            refusals.append(job_id)
            raise sqlite3.OperationalError("database or disk is full")  # SQLITE_FULL, as on a full disk
        return await finish(job_id, result_path, shrunk_to)

    monkeypatch.setattr(store.jobs, "finish", full_disk)
    job = await queue(store, telegram, tmp_path)
    dispatcher.wake()
    await settled(store, job.id, JobStatus.DELIVERED)
    assert refusals == [job.id, job.id]
    assert len(photos(fake, USER)) == 1


async def test_a_job_whose_end_cannot_be_recorded_runs_again_at_the_next_start(
    store: Store, telegram: Bot, backend: ScriptedBackend, fake: FakeTelegram, tmp_path: Path
) -> None:
    job = await queue(store, telegram, tmp_path)
    refusals = []

    async def full_disk(job_id: int, result_path: Path, shrunk_to: int | None = None) -> bool:
        refusals.append(job_id)
        raise sqlite3.OperationalError("database or disk is full")

    store.jobs.finish = full_disk  # type: ignore[method-assign]
    running = Dispatcher(telegram, store, backend, Config(token=fake.token, progress_interval=0.0))
    running.start()
    await fake.wait_for(lambda: refusals)
    await running.stop()
    # Neither done nor lost: the stop put it back in the queue, as it does with every running job.
    stuck = await store.jobs.get(job.id)
    assert stuck is not None
    assert (stuck.status, stuck.attempts) == (JobStatus.QUEUED, 0)

    async with Store.open(store.files.root) as reopened:
        again = await reopened.jobs.claim_next()
        assert again is not None
        assert again.id == job.id
