"""The real bot (Application, store, engine pool on tiny weights) against the fake Bot API server."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
from PIL import Image

from bot.app import build_application
from bot.config import Config
from bot.context import BotApplication
from bot.i18n import texts_in
from engine.weights import synthetic, synthetic_decoder
from storage import Job, JobStatus, Store
from tests.bot.fake_telegram import BotMessage, FakeTelegram
from tests.timing import scaled

texts = texts_in("en")  # the fake's users speak English

T = TypeVar("T")
ADMIN = 1000
USER = 2000


def jpeg(width: int, height: int, seed: int = 0) -> bytes:
    """A small smooth JPEG with some structure, like a tiny photo."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize((width, height))
    buffer = io.BytesIO()
    coarse.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def tiny_weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "tiny.npz"
    synthetic(channels=4, seed=0).save(path)
    return path


@pytest.fixture(scope="session")
def tiny_decoder_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "decoder.npz"
    synthetic_decoder(channels=4, seed=0).save(path)
    return path


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
def config(fake: FakeTelegram, tmp_path: Path, tiny_weights_file: Path, tiny_decoder_file: Path) -> Config:
    return Config(
        token=fake.token,
        api_url=fake.base_url,
        file_url=fake.base_file_url,
        admin_ids=frozenset({ADMIN}),
        data_dir=tmp_path / "data",
        weights=tiny_weights_file,
        decoder=tiny_decoder_file,
        previews=False,  # each bot start would spawn one more worker; the preview tests turn them on
        engine_workers=1,
        default_iterations=20,
        max_image_size=64,
        progress_interval=0.3,
    )


class BotRunner:
    """Starts and stops the real Application the way `run_polling` does, inside the test's loop."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.app: BotApplication | None = None

    async def start(self, **changes: object) -> BotApplication:
        app = build_application(replace(self.config, **changes))  # type: ignore[arg-type]
        await app.initialize()
        assert app.post_init is not None
        await app.post_init(app)
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=1)
        self.app = app
        return app

    async def stop(self) -> None:
        """In `run_polling`'s order: updater, application, post_stop, shutdown (HTTP), post_shutdown."""
        app, self.app = self.app, None
        if app is None:
            return
        assert app.updater is not None
        await app.updater.stop()
        await app.stop()
        assert app.post_stop is not None
        await app.post_stop(app)
        await app.shutdown()
        assert app.post_shutdown is not None
        await app.post_shutdown(app)


@pytest.fixture
async def runner(config: Config) -> AsyncIterator[BotRunner]:
    bot = BotRunner(config)
    yield bot
    await bot.stop()


@pytest.fixture
async def bot(runner: BotRunner) -> BotApplication:
    return await runner.start()


async def eventually(
    fetch: Callable[[], Awaitable[T]],
    condition: Callable[[T], bool],
    timeout: float = 20.0,  # noqa: ASYNC109 - a deadline over many polls
) -> T:
    """Await `fetch()` until its value meets `condition` (for state the bot changes asynchronously)."""
    timeout = scaled(timeout)  # the states wait on CPU-bound work: see tests/timing.py
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await fetch()
        if condition(value):
            return value
        assert asyncio.get_running_loop().time() < deadline, f"condition not met in {timeout} s: {value!r}"
        await asyncio.sleep(0.05)


async def delivered(store: Store, job_id: int = 1) -> Job:
    """The job once it is marked delivered (that happens just after the photo is sent)."""
    unsettled = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.DONE)
    job = await eventually(
        lambda: store.jobs.get(job_id), lambda j: j is not None and j.status not in unsettled
    )
    assert job is not None
    assert job.status == JobStatus.DELIVERED, job
    return job


def photos(fake: FakeTelegram, chat_id: int, language: str = "en") -> list[BotMessage]:
    """The results the bot delivered: pictures captioned as results (not status pictures or previews)."""
    done = texts_in(language).done(None)
    return [m for m in pictures(fake, chat_id) if (m.text or "").startswith(done)]


def pictures(fake: FakeTelegram, chat_id: int) -> list[BotMessage]:
    """Every photo or document message the bot has in the chat, whatever it shows now."""
    return [m for m in fake.messages(chat_id) if m.kind in ("photo", "document")]


def text_containing(fragment: str) -> Callable[[BotMessage], bool]:
    return lambda m: fragment in (m.text or "")
