"""Start-up: every weights format the README names, refusals with a reason, and no token in any output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.context import BotApplication
from engine.weights import WeightsError, synthetic
from storage import Store
from tests.bot.conftest import USER, BotRunner, delivered, jpeg, photos
from tests.bot.fake_telegram import FakeTelegram
from tests.engine.weight_files import write_mat_old


@pytest.fixture
def mat_weights(tmp_path: Path) -> Path:
    path = tmp_path / "imagenet-vgg-verydeep-19.mat"
    write_mat_old(synthetic(channels=4, seed=0), path)
    return path


async def test_the_seeds_mat_file_paints(fake: FakeTelegram, runner: BotRunner, mat_weights: Path) -> None:
    app: BotApplication = await runner.start(weights=mat_weights)
    await fake.user_sends_photo(USER, USER, jpeg(32, 32, seed=1))
    await fake.user_sends_photo(USER, USER, jpeg(32, 32, seed=2))
    store: Store = app.bot_data.store
    await delivered(store)
    assert len(photos(fake, USER)) == 1


async def test_unreadable_weights_stop_the_start_before_ready(
    fake: FakeTelegram, runner: BotRunner, tmp_path: Path
) -> None:
    broken = tmp_path / "vgg19.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(WeightsError, match=r"vgg19\.npz"):
        await runner.start(weights=broken)
    runner.app = None
    # Nothing was opened or started: no commands published, no database created.
    assert fake.calls("setMyCommands") == []
    assert not (runner.config.data_dir / "bot.sqlite3").exists()


def _run_bot(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot"], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_a_rejected_token_is_explained_without_printing_it(tmp_path: Path) -> None:
    with FakeTelegram().run_in_thread() as fake:
        wrong = "5000000001:AAWrongTokenWrongTokenWrongTokenWrongTo"
        env = os.environ | fake.env() | {"TELEGRAM_BOT_TOKEN": wrong, "BOT_DATA_DIR": str(tmp_path)}
        done = _run_bot(env, tmp_path)
    assert done.returncode == 2, done.stderr
    # The last word is ours and says what to check (python-telegram-bot logs its own attempt before).
    assert "Telegram refused TELEGRAM_BOT_TOKEN" in done.stderr.strip().splitlines()[-1]
    assert wrong not in done.stderr + done.stdout
    assert wrong.split(":")[1] not in done.stderr + done.stdout


def test_weights_that_cannot_be_read_are_named_at_start(tmp_path: Path) -> None:
    broken = tmp_path / "weights.mat"
    broken.write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    with FakeTelegram().run_in_thread() as fake:
        env = os.environ | fake.env() | {"VGG_WEIGHTS": str(broken), "BOT_DATA_DIR": str(tmp_path)}
        done = _run_bot(env, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "cannot start without the VGG-19 weights" in done.stderr
    assert "weights.mat" in done.stderr
    assert fake.token not in done.stderr
    assert "Traceback" not in done.stderr
