"""A result longer than the 1280 px photos clients show also arrives, once, as a file at full size.

The store is a real SQLite file and the chat is the fake Bot API server; the engine is scripted to write a
result of the size each test needs.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from telegram import Bot

from bot.config import Config
from bot.delivery import upload_timeout
from bot.dispatcher import Dispatcher
from bot.i18n import texts_in
from bot.results import FULL_SIZE_OVER, prepare
from engine.workers.scripted import Scripted, ScriptedBackend
from storage import Job, JobRequest, JobStatus, Store
from tests.bot.conftest import USER, eventually, photos
from tests.bot.fake_telegram import BotMessage, FakeTelegram

texts = texts_in("en")  # the fake's users speak English

REQUEST = JobRequest(iterations=10, max_size=2048)


def png(width: int, height: int, noise: bool = False) -> bytes:
    """A PNG of that size: smooth (small), or noise (as large as PNG gets: about 3 bytes a pixel)."""
    rng = np.random.default_rng(0)
    if noise:
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    else:
        coarse = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
        image = coarse.resize((width, height), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def size_of(data: bytes | None) -> tuple[int, int]:
    assert data is not None
    with Image.open(io.BytesIO(data)) as image:
        return image.size


@pytest.fixture
async def telegram(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(fake.token, base_url=fake.base_url, base_file_url=fake.base_file_url) as bot:
        yield bot


@asynccontextmanager
async def running(
    data_dir: Path, telegram: Bot, fake: FakeTelegram, *results: bytes | Scripted
) -> AsyncIterator[Store]:
    """A store and a dispatcher on it, as one run of the bot; job N (counted from 1) writes results[N-1]."""
    with ScriptedBackend(size=1) as backend:
        for number, output in enumerate(results, start=1):
            backend.plan(str(number), output if isinstance(output, Scripted) else Scripted(output=output))
        async with Store.open(data_dir) as store:
            dispatcher = Dispatcher(telegram, store, backend, Config(token=fake.token, progress_interval=0.0))
            dispatcher.start()
            try:
                yield store
            finally:
                await dispatcher.stop()


async def paint(store: Store, telegram: Bot, tmp_path: Path) -> Job:
    """A job as the bot queues one, with its status picture in the chat; returned once delivered."""
    photo = tmp_path / "photo.png"
    Image.new("RGB", (32, 32), (10, 120, 200)).save(photo)
    job = await store.jobs.submit(
        USER, USER, photo, [photo], REQUEST, content_size=(32, 32), held=True, work=1.0
    )
    picture = io.BytesIO()
    Image.new("RGB", (32, 32)).save(picture, "JPEG")
    status = await telegram.send_photo(USER, picture.getvalue(), caption=texts.queued(1, None))
    job = await store.jobs.open(job.id, status.message_id)
    done = await eventually(
        lambda: store.jobs.get(job.id), lambda j: j is not None and j.status == JobStatus.DELIVERED
    )
    assert done is not None
    return done


def documents(fake: FakeTelegram) -> list[BotMessage]:
    """The full-size files: documents sent in reply (a result refused as a photo edits its message)."""
    return [m for m in fake.messages(USER) if m.kind == "document" and m.reply_to_message_id is not None]


async def test_a_1600_px_result_is_the_photo_and_a_full_size_file(
    fake: FakeTelegram, telegram: Bot, tmp_path: Path
) -> None:
    result = png(1600, 1200)
    async with running(tmp_path / "data", telegram, fake, result) as store:
        job = await paint(store, telegram, tmp_path)
        file = await fake.wait_for(lambda: next(iter(documents(fake)), None))
    [photo] = photos(fake, USER)
    assert photo.kind == "photo"
    assert photo.message_id == job.status_message_id
    assert photo.data == result
    assert file.reply_to_message_id == job.status_message_id
    assert file.file_name == "painting-1.png"
    assert file.data == result
    assert size_of(file.data) == (1600, 1200)
    assert file.text == texts.full_size(1600, 1200)
    assert [m.text for m in fake.messages(USER) if m.kind == "text"] == []  # the file is the ready reply
    assert len(fake.calls("sendDocument")) == 1


async def test_a_restart_after_delivery_sends_nothing_again(
    fake: FakeTelegram, telegram: Bot, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    async with running(data_dir, telegram, fake, png(1600, 1200)) as store:
        await paint(store, telegram, tmp_path)
        await fake.wait_for(lambda: documents(fake))
    edits = len(fake.calls("editMessageMedia"))
    # The next run delivers a picture of its own: by then it has long dealt with anything left over.
    async with running(data_dir, telegram, fake, b"", png(64, 48)) as store:
        await paint(store, telegram, tmp_path)
        await fake.wait_for_message(USER, lambda m: m.text == texts.ready)
    assert len(documents(fake)) == 1
    assert len(fake.calls("sendDocument")) == 1
    assert len(fake.calls("editMessageMedia")) == edits + 1  # the second picture's only


async def test_a_timed_out_file_is_not_sent_again(fake: FakeTelegram, telegram: Bot, tmp_path: Path) -> None:
    # Telegram takes the file but answers after the client's 5 s read timeout: a retry would send a copy.
    fake.fail_next("sendDocument", "timeout", then_apply=True, hold=7.0)
    async with running(tmp_path / "data", telegram, fake, png(1600, 1200)) as store:
        await paint(store, telegram, tmp_path)
        await fake.wait_for(lambda: documents(fake), 15)  # taken after 7 s; the client gave up at 5 s
        # A retry would come before the delivery is recorded.
        await eventually(lambda: store.jobs.get(1), lambda job: job is not None and job.status == "delivered")
    assert len(fake.calls("sendDocument")) == 1
    assert len(documents(fake)) == 1


async def test_a_result_of_1280_px_gets_the_text_reply_and_no_file(
    fake: FakeTelegram, telegram: Bot, tmp_path: Path
) -> None:
    async with running(tmp_path / "data", telegram, fake, png(FULL_SIZE_OVER, 960)) as store:
        job = await paint(store, telegram, tmp_path)
        notice = await fake.wait_for_message(USER, lambda m: m.text == texts.ready)
    assert notice.reply_to_message_id == job.status_message_id
    assert fake.calls("sendDocument") == []
    [photo] = photos(fake, USER)
    assert (photo.kind, photo.width, photo.height) == ("photo", FULL_SIZE_OVER, 960)


async def test_a_result_too_big_for_a_photo_shows_as_a_jpeg_and_comes_as_the_png(
    fake: FakeTelegram, telegram: Bot, tmp_path: Path
) -> None:
    result = png(2000, 1800, noise=True)
    assert len(result) > 10 * 1024 * 1024  # over Telegram's limit for a photo
    async with running(tmp_path / "data", telegram, fake, result) as store:
        await paint(store, telegram, tmp_path)
        file = await fake.wait_for(lambda: next(iter(documents(fake)), None))
    [photo] = photos(fake, USER)
    assert photo.kind == "photo"
    assert photo.data is not None
    assert photo.data[:3] == b"\xff\xd8\xff"  # a JPEG
    assert size_of(photo.data) == (2000, 1800)
    assert file.data == result


def test_a_result_over_the_upload_limit_becomes_a_jpeg_file(tmp_path: Path) -> None:
    path = tmp_path / "7.png"
    path.write_bytes(png(1600, 1200, noise=True))
    result = prepare(path, 7, upload_limit=1024 * 1024)
    assert result.filename == "painting-7.jpg"
    assert result.document[:3] == b"\xff\xd8\xff"
    assert size_of(result.document) == (1600, 1200)


def test_a_photo_is_downscaled_only_as_far_as_the_limits_need(tmp_path: Path) -> None:
    path = tmp_path / "1.png"
    path.write_bytes(png(6000, 4500))  # width + height over Telegram's 10 000
    result = prepare(path, 1)
    assert result.document == path.read_bytes()
    width, height = size_of(result.photo)
    assert 9900 < width + height <= 10_000
    path.write_bytes(png(1600, 1200, noise=True))
    result = prepare(path, 1, photo_limit=1024 * 1024)
    assert result.photo is not None
    assert len(result.photo) <= 1024 * 1024
    assert 800 < size_of(result.photo)[0] < 1600


def test_an_upload_may_take_longer_the_bigger_it_is() -> None:
    assert upload_timeout(0) == 20.0
    assert upload_timeout(10_000_000) == 40.0


async def test_a_painting_the_engine_had_to_shrink_says_so(
    fake: FakeTelegram, telegram: Bot, tmp_path: Path
) -> None:
    """Short of memory, a worker paints as big as fits (Outcome.shrunk_to); the caption tells the user."""
    async with running(
        tmp_path / "data", telegram, fake, Scripted(output=png(1000, 750), shrunk_to=1000)
    ) as store:
        photo = tmp_path / "big.png"
        Image.new("RGB", (2000, 1500), (10, 120, 200)).save(photo)
        job = await store.jobs.submit(
            USER, USER, photo, [photo], REQUEST, content_size=(2000, 1500), held=True, work=1.0
        )
        status = await telegram.send_photo(USER, png(32, 32), caption=texts.queued(1, None))
        job = await store.jobs.open(job.id, status.message_id)
        await eventually(
            lambda: store.jobs.get(job.id), lambda j: j is not None and j.status == JobStatus.DELIVERED
        )
    [shown] = photos(fake, USER)
    assert shown.text is not None
    assert "I painted it at 1000 px: 2000 px needs more memory than I have free now." in shown.text
