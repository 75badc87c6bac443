"""The host's pace, probed by the painters as they start: the default size and the first job's estimate."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.context import BotApplication
from engine.budget import largest_within
from storage import Store
from tests.bot.conftest import USER, BotRunner, delivered, eventually, jpeg
from tests.bot.fake_telegram import FakeTelegram
from tests.timing import scaled


async def test_the_probe_sets_the_default_size_and_the_first_estimate(
    fake: FakeTelegram, runner: BotRunner, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.app")
    # A budget any host meets, so the choice differs from the 512 px used before the pace is known.
    app: BotApplication = await runner.start(max_image_size=2048, target_seconds=1e6)
    data = app.bot_data
    assert data.config is not None
    assert data.config.default_size == 512  # until a painter has measured the host's pace
    assert data.dispatcher is not None
    pace = await asyncio.wait_for(asyncio.wrap_future(data.dispatcher.pool.paced), scaled(120))

    # The largest size painted within BOT_TARGET_SECONDS at that pace.
    assert largest_within(pace.seconds, 20, 1e6, 2048) == 2048

    async def default_size() -> int:
        assert data.config is not None
        return data.config.default_size

    await eventually(default_size, lambda size: size == 2048)  # applied as the pace arrives
    assert any(
        "paintings are 2048 px unless a chat chooses: the largest within BOT_TARGET_SECONDS=1e+06"
        in r.message
        for r in caplog.records
    )

    # No job has finished yet: the first job's estimate comes from the probe.
    await fake.user_sends_photo(USER, USER, jpeg(32, 32, seed=1))
    await fake.user_sends_photo(USER, USER, jpeg(32, 32, seed=2))
    store: Store = data.store
    await delivered(store)
    captions = [str(call.params.get("caption", "")) for call in fake.calls("sendPhoto")]
    assert any(caption.startswith("Queued") and "Ready in about" in caption for caption in captions), captions
