"""Start-up: every weights format the README names, refusals with a reason, and no token in any output."""

from __future__ import annotations

import os
import socket
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


def _check(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "--check"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_passes_against_the_bot_api_and_starts_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with FakeTelegram().run_in_thread() as fake:
        done = _check(os.environ | fake.env() | {"BOT_DATA_DIR": str(data)}, tmp_path)
        assert fake.calls("getMe")  # it asked Telegram who the token belongs to
        assert fake.calls("getUpdates") == []  # and did not start to poll
    assert done.returncode == 0, done.stderr
    assert f"data directory: {data.resolve()} is writable" in done.stdout
    assert "Telegram: the token is @" in done.stdout
    assert done.stdout.strip().splitlines()[-1].startswith("ready to start")
    assert fake.token not in done.stdout + done.stderr
    assert list(data.iterdir()) == []  # its test file is gone; no database was created


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"TELEGRAM_BOT_TOKEN": "not-a-token"}, "TELEGRAM_BOT_TOKEN is not a bot token"),
        (
            {"TELEGRAM_BOT_TOKEN": "5000000001:AAWrongTokenWrongTokenWrongTokenWrongTo"},
            "Telegram refused TELEGRAM_BOT_TOKEN",
        ),
        ({"BOT_DATA_DIR": "{file}/data"}, "cannot be written"),
        ({"TELEGRAM_API_URL": "http://127.0.0.1:{closed}/bot"}, "cannot be reached"),
    ],
    ids=["malformed token", "refused token", "unwritable data dir", "unreachable API"],
)
def test_check_fails_clearly_on_each_problem(tmp_path: Path, change: dict[str, str], reason: str) -> None:
    afile = tmp_path / "a-file"
    afile.write_text("not a folder")
    with socket.socket() as closed:  # a port nothing listens on once it is closed
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    values = {k: v.format(file=afile, closed=port) for k, v in change.items()}
    with FakeTelegram().run_in_thread() as fake:
        env = os.environ | fake.env() | {"BOT_DATA_DIR": str(tmp_path / "data")} | values
        done = _check(env, tmp_path)
        assert fake.calls("getUpdates") == []
    assert done.returncode == 2, done.stdout
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("neural-style-bot --check: ")
    assert reason in last
    assert "Traceback" not in done.stderr
    for token in (fake.token, values.get("TELEGRAM_BOT_TOKEN", fake.token)):
        assert token.split(":")[-1] not in done.stdout + done.stderr
