"""One user cannot fill the disk: a daily limit on pictures, and a free-space floor for taking any."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from bot.limits import FreeSpace
from storage import Store
from tests.bot.conftest import ADMIN, USER, BotRunner, eventually, jpeg, text_containing, texts
from tests.bot.fake_telegram import FakeTelegram

DAY = 86_400.0
NO_DISK_IS_THIS_BIG = 10**15  # a petabyte: more than any test machine has free


def refusals(fake: FakeTelegram, chat_id: int) -> list[str]:
    return [m.text for m in fake.messages(chat_id) if m.text == texts.short_of_disk]


def uploads(data_dir: Path) -> list[str]:
    return sorted(path.name for path in (data_dir / "uploads").iterdir())


def saved_name(picture: bytes) -> str:
    return f"{hashlib.sha256(picture).hexdigest()}.jpg"


async def test_a_user_over_the_daily_limit_is_told_when_to_come_back(
    fake: FakeTelegram, runner: BotRunner
) -> None:
    """Three pictures a day: the fourth is refused, even after a restart, without being downloaded."""
    app = await runner.start(daily_limit_per_user=3, default_iterations=5000)
    for seed in range(3):
        await fake.user_sends_photo(USER, USER, jpeg(32, 32, seed=seed))
    await fake.wait_for_message(USER, text_containing(texts.content_received))  # the third: a new photo
    store: Store = app.bot_data.store
    await eventually(lambda: store.sessions.get(USER), lambda s: s.content_path is not None)
    await runner.stop()

    app = await runner.start(daily_limit_per_user=3, default_iterations=5000)  # the count is kept
    downloads = len(fake.calls("download"))
    kept = uploads(runner.config.data_dir)
    late = jpeg(32, 32, seed=3)
    await fake.user_sends_photo(USER, USER, late)
    refusal = await fake.wait_for_message(USER, text_containing("in the last 24 hours"))

    assert refusal.text == texts.daily_limit(3, DAY)  # "… the next one in 24 h 0 min."
    assert len(fake.calls("download")) == downloads
    assert uploads(runner.config.data_dir) == kept
    assert saved_name(late) not in kept
    store = app.bot_data.store
    assert len(await store.jobs.active_for_chat(USER)) == 1
    assert (await store.sessions.get(USER)).style_path is None  # the third photo still waits for a style

    # An admin has no daily limit.
    for seed in range(10, 14):
        await fake.user_sends_photo(ADMIN, ADMIN, jpeg(32, 32, seed=seed))
    await eventually(lambda: store.jobs.active_for_chat(ADMIN), lambda jobs: len(jobs) == 2)
    assert not [m for m in fake.messages(ADMIN) if "in the last 24 hours" in (m.text or "")]


async def test_under_the_free_space_floor_no_picture_is_taken(
    fake: FakeTelegram, runner: BotRunner, caplog: pytest.LogCaptureFixture
) -> None:
    app = await runner.start(min_free_disk=NO_DISK_IS_THIS_BIG)
    caplog.set_level(logging.INFO, logger="bot.limits")
    for user, seed in ((USER, 1), (USER, 2), (ADMIN, 3)):
        before = len(refusals(fake, user))
        await fake.user_sends_photo(user, user, jpeg(32, 32, seed=seed))
        await fake.wait_for(lambda user=user, before=before: len(refusals(fake, user)) > before)
    assert len(refusals(fake, USER)) == 2

    assert fake.calls("download") == []
    assert uploads(runner.config.data_dir) == []
    store: Store = app.bot_data.store
    assert (await store.sessions.get(USER)).content_path is None
    # The operator is warned once, not once per picture.
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "bot.limits"]
    assert len(warnings) == 1
    assert "under BOT_MIN_FREE_DISK" in warnings[0].getMessage()

    await fake.user_sends_text(ADMIN, ADMIN, "/stats")
    stats = await fake.wait_for_message(ADMIN, text_containing("Free disk space"))
    assert stats.text is not None
    floor = texts.size(NO_DISK_IS_THIS_BIG)
    assert stats.text.splitlines()[-1].endswith(f"under the {floor} floor: new pictures are refused.")


async def test_stats_show_the_free_space_and_the_floor(fake: FakeTelegram, runner: BotRunner) -> None:
    await runner.start(min_free_disk=1024**2)
    await fake.user_sends_text(ADMIN, ADMIN, "/stats")
    stats = await fake.wait_for_message(ADMIN, text_containing("Free disk space"))
    assert stats.text is not None
    assert stats.text.splitlines()[-1].endswith("(new pictures are refused under 1 MiB).")


def test_the_log_tells_each_change_of_state_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.limits")
    disk = FreeSpace(tmp_path, floor=0)
    assert not disk.short()
    disk.floor = NO_DISK_IS_THIS_BIG  # as if the disk had filled up
    assert [disk.short(), disk.short()] == [True, True]
    disk.floor = 0
    assert [disk.short(), disk.short()] == [False, False]
    disk.floor = NO_DISK_IS_THIS_BIG
    assert disk.short()

    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO", "WARNING"]
    assert all(str(tmp_path) in r.getMessage() for r in caplog.records)
