"""Configuration from the environment: defaults, parsing, and one clear line for each mistake."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import DEFAULT_SIZE_UNMEASURED, Config, ConfigError
from tests.timing import scaled


def test_defaults_with_only_a_token() -> None:
    config = Config.from_env({"TELEGRAM_BOT_TOKEN": "123:abc"})
    assert config == Config(token="123:abc")
    assert config.api_url == "https://api.telegram.org/bot"
    assert config.data_dir == Path("data")


def test_every_variable_is_read() -> None:
    config = Config.from_env(
        {
            "TELEGRAM_BOT_TOKEN": "123:abc",
            "TELEGRAM_API_URL": "http://127.0.0.1:8081/bot",
            "TELEGRAM_FILE_URL": "http://127.0.0.1:8081/file/bot",
            "BOT_ADMIN_IDS": "1, 22,333",
            "BOT_DATA_DIR": "/srv/bot",
            "VGG_WEIGHTS": "/srv/vgg.npz",
            "ADAIN_DECODER": "/srv/decoder.npz",
            "BOT_PREVIEWS": "off",
            "ENGINE_WORKERS": "2",
            "DEFAULT_ITERATIONS": "150",
            "DEFAULT_OPTIMIZER": "Adam",
            "ENGINE_PRECISION": "Float32",
            "DEFAULT_IMAGE_SIZE": "512",
            "MAX_IMAGE_SIZE": "768",
            "LOG_LEVEL": "debug",
            "BOT_PROGRESS_INTERVAL": "5",
            "BOT_MAX_QUEUED_PER_USER": "4",
            "BOT_DAILY_LIMIT_PER_USER": "20",
            "BOT_RETENTION_DAYS": "30",
            "BOT_INPUT_RETENTION_DAYS": "0",
            "BOT_MIN_FREE_DISK": "500M",
            "STYLE_LOSS": "Sliced",
            "STYLE_GRAM_LAYERS": "3",
            "AVERAGE_DECAY": "0.9",
        }
    )
    assert config == Config(
        token="123:abc",
        api_url="http://127.0.0.1:8081/bot",
        file_url="http://127.0.0.1:8081/file/bot",
        admin_ids=frozenset({1, 22, 333}),
        data_dir=Path("/srv/bot"),
        weights=Path("/srv/vgg.npz"),
        decoder=Path("/srv/decoder.npz"),
        previews=False,
        engine_workers=2,
        optimizer="adam",
        precision="float32",
        style_loss="sliced",
        gram_layers=3,
        average_decay=0.9,
        default_iterations=150,
        default_image_size=512,
        max_image_size=768,
        log_level="DEBUG",
        progress_interval=5.0,
        max_queued_per_user=4,
        daily_limit_per_user=20,
        retention_days=30,
        input_retention_days=0,
        min_free_disk=500 * 1024**2,
    )
    assert config.is_admin(22)
    assert not config.is_admin(2)
    assert config.default_size == 512


def test_the_default_size_waits_for_the_pace_unless_set_and_is_never_above_the_maximum() -> None:
    token = {"TELEGRAM_BOT_TOKEN": "123:abc"}
    # Until a worker has measured the host's pace (bot/app.py), the smallest size the pace can choose.
    assert Config.from_env(token).default_size == DEFAULT_SIZE_UNMEASURED == 512
    assert Config.from_env(token).target_seconds == 180.0
    assert Config.from_env({**token, "BOT_TARGET_SECONDS": "60"}).target_seconds == 60.0
    assert Config.from_env(token).max_image_size == 2048
    assert Config.from_env({**token, "MAX_IMAGE_SIZE": "256"}).default_size == 256
    assert Config.from_env({**token, "DEFAULT_IMAGE_SIZE": "2048"}).default_size == 2048


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "TELEGRAM_BOT_TOKEN is not set"),
        ({"BOT_ADMIN_IDS": "alice"}, "BOT_ADMIN_IDS must be comma-separated"),
        ({"DEFAULT_ITERATIONS": "lots"}, "DEFAULT_ITERATIONS must be a whole number"),
        ({"DEFAULT_ITERATIONS": "0"}, "DEFAULT_ITERATIONS must be between 1 and 5000"),
        ({"DEFAULT_OPTIMIZER": "sgd"}, "DEFAULT_OPTIMIZER must be lbfgs or adam"),
        ({"ENGINE_PRECISION": "fp16"}, "ENGINE_PRECISION must be auto, float32 or bfloat16"),
        ({"STYLE_LOSS": "wasserstein"}, "STYLE_LOSS must be gram or sliced, not 'wasserstein'"),
        ({"STYLE_GRAM_LAYERS": "6"}, "STYLE_GRAM_LAYERS must be between 0 and 5, not 6"),
        ({"AVERAGE_DECAY": "1"}, "AVERAGE_DECAY must be below 1 .0 turns averaging off., not 1.0"),
        ({"AVERAGE_DECAY": "-0.5"}, "AVERAGE_DECAY must be at least 0.0, not -0.5"),
        ({"MAX_IMAGE_SIZE": "99999"}, "MAX_IMAGE_SIZE must be between 64 and 4096"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be"),
        ({"BOT_PROGRESS_INTERVAL": "-1"}, "BOT_PROGRESS_INTERVAL must be at least 0"),
        ({"BOT_TARGET_SECONDS": "soon"}, "BOT_TARGET_SECONDS must be a number"),
        ({"BOT_PREVIEWS": "sometimes"}, "BOT_PREVIEWS must be on or off"),
        ({"BOT_DAILY_LIMIT_PER_USER": "0"}, "BOT_DAILY_LIMIT_PER_USER must be between 1 and any, not 0"),
        ({"BOT_RETENTION_DAYS": "0"}, "BOT_RETENTION_DAYS must be between 1 and 365, not 0"),
        ({"BOT_INPUT_RETENTION_DAYS": "-1"}, "BOT_INPUT_RETENTION_DAYS must be between 0 and 365, not -1"),
        ({"BOT_INPUT_RETENTION_DAYS": "a week"}, "BOT_INPUT_RETENTION_DAYS must be a whole number"),
        ({"BOT_MIN_FREE_DISK": "lots"}, "BOT_MIN_FREE_DISK must be a size such as 500M, 2G"),
        ({"BOT_MIN_FREE_DISK": "-1G"}, "BOT_MIN_FREE_DISK must be a size"),
        ({"BOT_MIN_FREE_DISK": "2 P"}, "BOT_MIN_FREE_DISK must be a size"),
    ],
)
def test_mistakes_are_named(env: dict[str, str], message: str) -> None:
    full = {"TELEGRAM_BOT_TOKEN": "123:abc", **env} if "TELEGRAM_BOT_TOKEN" not in message else env
    with pytest.raises(ConfigError, match=message):
        Config.from_env(full)


def test_disk_defaults() -> None:
    config = Config.from_env({"TELEGRAM_BOT_TOKEN": "123:abc"})
    assert (config.daily_limit_per_user, config.retention_days, config.input_retention_days) == (50, 7, 1)
    assert config.min_free_disk == 1024**3


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("1073741824", 1024**3),
        ("500M", 500 * 1024**2),
        ("2G", 2 * 1024**3),
        ("2g", 2 * 1024**3),
        ("1.5GiB", 3 * 1024**3 // 2),
        ("750 MB", 750 * 1024**2),
        ("1T", 1024**4),
        ("64K", 64 * 1024),
    ],
)
def test_min_free_disk_takes_bytes_or_units(text: str, size: int) -> None:
    config = Config.from_env({"TELEGRAM_BOT_TOKEN": "123:abc", "BOT_MIN_FREE_DISK": text})
    assert config.min_free_disk == size


def start_bot(env: dict[str, str], folder: Path) -> subprocess.CompletedProcess[str]:
    """`python -m bot` with this environment, run to its end."""
    return subprocess.run(
        [sys.executable, "-m", "bot"], env=env, cwd=folder, capture_output=True, text=True, timeout=scaled(60)
    )


def test_missing_token_stops_start_up_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"}
    done = start_bot(env, tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "neural-style-bot: TELEGRAM_BOT_TOKEN is not set: get a token from @BotFather and export it"
    ]


def test_engine_backend_defaults_to_the_local_pool() -> None:
    config = Config.from_env({"TELEGRAM_BOT_TOKEN": "123:abc"})
    assert (config.engine_backend, config.ray_address, config.ray_cpus_per_worker) == ("local", None, 1)


def test_ray_backend_variables_are_read() -> None:
    config = Config.from_env(
        {
            "TELEGRAM_BOT_TOKEN": "123:abc",
            "ENGINE_BACKEND": " Ray ",
            "RAY_ADDRESS": "10.0.0.5:6379",
            "RAY_CPUS_PER_WORKER": "4",
            "ENGINE_WORKERS": "6",
        }
    )
    assert (config.engine_backend, config.ray_address) == ("ray", "10.0.0.5:6379")
    assert (config.ray_cpus_per_worker, config.engine_workers) == (4, 6)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ENGINE_BACKEND": "kubernetes"}, "ENGINE_BACKEND must be local or ray, not 'kubernetes'"),
        ({"RAY_CPUS_PER_WORKER": "0"}, "RAY_CPUS_PER_WORKER must be between 1 and any, not 0"),
        ({"RAY_CPUS_PER_WORKER": "two"}, "RAY_CPUS_PER_WORKER must be a whole number"),
    ],
)
def test_ray_backend_mistakes_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_env({"TELEGRAM_BOT_TOKEN": "123:abc", **env})


def test_ray_backend_without_ray_installed_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what the import system sees when ray is not installed
    with pytest.raises(ConfigError, match=r"ENGINE_BACKEND=ray needs Ray: python -m pip install"):
        Config.from_env({"TELEGRAM_BOT_TOKEN": "123:abc", "ENGINE_BACKEND": "ray"})


WEBHOOK = {
    "TELEGRAM_BOT_TOKEN": "123:abc",
    "BOT_WEBHOOK_URL": "https://bot.example.com/telegram/hook",
    "BOT_WEBHOOK_SECRET": "Abc-123_xyz",
}


def test_without_a_webhook_url_the_bot_polls() -> None:
    config = Config.from_env({"TELEGRAM_BOT_TOKEN": "123:abc", "BOT_WEBHOOK_SECRET": "unused"})
    assert (config.webhook_url, config.webhook_secret) == (None, None)
    assert (config.webhook_host, config.webhook_port) == ("0.0.0.0", 8443)


def test_webhook_variables_are_read() -> None:
    config = Config.from_env(WEBHOOK | {"BOT_WEBHOOK_LISTEN": "127.0.0.1:9000"})
    assert config.webhook_url == "https://bot.example.com/telegram/hook"
    assert config.webhook_path == "/telegram/hook"
    assert config.webhook_secret == "Abc-123_xyz"
    assert (config.webhook_host, config.webhook_port) == ("127.0.0.1", 9000)
    assert Config.from_env(WEBHOOK | {"BOT_WEBHOOK_URL": "https://bot.example.com"}).webhook_path == "/"


@pytest.mark.parametrize(
    ("listen", "host", "port"),
    [
        ("0.0.0.0:8443", "0.0.0.0", 8443),
        ("[::]:8443", "::", 8443),
        ("[::1]:80", "::1", 80),
        ("localhost:8080", "localhost", 8080),
        (" 10.0.0.2:65535 ", "10.0.0.2", 65535),
    ],
)
def test_webhook_listen_takes_ipv4_ipv6_and_host_names(listen: str, host: str, port: int) -> None:
    config = Config.from_env(WEBHOOK | {"BOT_WEBHOOK_LISTEN": listen})
    assert (config.webhook_host, config.webhook_port) == (host, port)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BOT_WEBHOOK_SECRET": ""}, "BOT_WEBHOOK_SECRET is not set: with BOT_WEBHOOK_URL it is required"),
        ({"BOT_WEBHOOK_SECRET": "has space"}, "BOT_WEBHOOK_SECRET may only contain A-Z, a-z, 0-9, _ and -"),
        ({"BOT_WEBHOOK_SECRET": "dots.are.out"}, "BOT_WEBHOOK_SECRET may only contain"),
        (
            {"BOT_WEBHOOK_SECRET": "x" * 257},
            "BOT_WEBHOOK_SECRET must be at most 256 characters long, not 257",
        ),
        ({"BOT_WEBHOOK_URL": "bot.example.com/hook"}, "BOT_WEBHOOK_URL must be an https URL"),
        ({"BOT_WEBHOOK_URL": "http://bot.example.com/hook"}, "BOT_WEBHOOK_URL must be an https URL"),
        ({"BOT_WEBHOOK_URL": "https://[::1/hook"}, "BOT_WEBHOOK_URL must be an https URL"),
        ({"BOT_WEBHOOK_LISTEN": "8443"}, "BOT_WEBHOOK_LISTEN must be host:port"),
        ({"BOT_WEBHOOK_LISTEN": ":8443"}, "BOT_WEBHOOK_LISTEN must be host:port"),
        ({"BOT_WEBHOOK_LISTEN": "::1:8443"}, "BOT_WEBHOOK_LISTEN must be host:port"),
        ({"BOT_WEBHOOK_LISTEN": "[::1]8443"}, "BOT_WEBHOOK_LISTEN must be host:port"),
        ({"BOT_WEBHOOK_LISTEN": "[bot]:8443"}, "BOT_WEBHOOK_LISTEN must be host:port"),
        ({"BOT_WEBHOOK_LISTEN": "300.1.2.3:8443"}, "BOT_WEBHOOK_LISTEN must be host:port"),
        ({"BOT_WEBHOOK_LISTEN": "0.0.0.0:0"}, "BOT_WEBHOOK_LISTEN's port must be between 1 and 65535"),
        ({"BOT_WEBHOOK_LISTEN": "0.0.0.0:https"}, "BOT_WEBHOOK_LISTEN's port must be between 1 and 65535"),
        ({"BOT_WEBHOOK_LISTEN": "[::]:70000"}, "BOT_WEBHOOK_LISTEN's port must be between 1 and 65535"),
    ],
)
def test_webhook_mistakes_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Config.from_env(WEBHOOK | env)


def test_a_bad_webhook_secret_is_not_repeated() -> None:
    with pytest.raises(ConfigError) as raised:
        Config.from_env(WEBHOOK | {"BOT_WEBHOOK_SECRET": "almost-right-but-for-this!"})
    assert "almost-right" not in str(raised.value)
    config = Config.from_env(WEBHOOK)
    assert "Abc-123_xyz" not in repr(config)


def test_a_local_bot_api_server_may_post_to_plain_http() -> None:
    # The official Bot API posts only to HTTPS; a local one (telegram-bot-api --local) also to HTTP.
    env = WEBHOOK | {"TELEGRAM_API_URL": "http://127.0.0.1:8081/bot", "BOT_WEBHOOK_URL": "http://bot:8443/h"}
    assert Config.from_env(env).webhook_url == "http://bot:8443/h"
    with pytest.raises(ConfigError, match="BOT_WEBHOOK_URL must be an https or http URL"):
        Config.from_env(env | {"BOT_WEBHOOK_URL": "ftp://bot/h"})


def test_a_webhook_url_without_secret_stops_start_up_with_one_line(tmp_path: Path) -> None:
    env = os.environ | {"TELEGRAM_BOT_TOKEN": "123:abc", "BOT_WEBHOOK_URL": "https://bot.example.com/h"}
    env.pop("BOT_WEBHOOK_SECRET", None)
    done = start_bot(env, tmp_path)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(
        "neural-style-bot: BOT_WEBHOOK_SECRET is not set: with BOT_WEBHOOK_URL it is required"
    )


def test_the_token_is_not_in_the_configs_repr() -> None:
    config = Config.from_env({"TELEGRAM_BOT_TOKEN": "123456:SECRET-token_value"})
    assert config.token == "123456:SECRET-token_value"
    assert "SECRET-token_value" not in repr(config)
