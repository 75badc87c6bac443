"""The bot's configuration, read from the environment (the only module that reads it)."""

from __future__ import annotations

import importlib.util
import ipaddress
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast
from urllib.parse import urlsplit

from bot.painting import EngineChoices
from engine.budget import SIZES
from engine.params import Precision, StyleLoss
from storage import Limits


class ConfigError(ValueError):
    """A variable is missing or malformed; the message is one line naming it."""


# A painting's size while no worker has measured this host's pace yet (`Config.default_size`): the
# smallest the pace can choose, so that nothing asked in the first seconds takes longer than the budget.
DEFAULT_SIZE_UNMEASURED = SIZES[0]
# What setWebhook accepts as secret_token, and what Telegram then sends in X-Telegram-Bot-Api-Secret-Token.
WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
# A host name for BOT_WEBHOOK_LISTEN: letters, digits, dots and hyphens.
HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
# BOT_MIN_FREE_DISK: a number of bytes, or of K, M, G or T (powers of 1024), as in `500M` or `1.5GiB`.
SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)
SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
GIB = 1024**3
# The retention settings' bounds are the store's, so that a value accepted here is one it accepts.
RETENTION = Limits().retention_days
INPUTS = Limits().input_retention_days


@dataclass(frozen=True)
class Config:
    """Everything the bot needs to start; docs/configuration.md describes each variable."""

    token: str = field(repr=False)  # never shown: it is the key to the bot
    api_url: str = "https://api.telegram.org/bot"
    file_url: str = "https://api.telegram.org/file/bot"
    admin_ids: frozenset[int] = frozenset()
    data_dir: Path = Path("data")
    weights: Path | None = None  # None: the engine's cache, fetched on first start
    decoder: Path | None = None  # the AdaIN decoder; None: beside the cached weights
    previews: bool = True  # send an instant AdaIN preview while the painting waits and runs
    engine_workers: int | None = None  # None: one per GPU, else 1
    engine_backend: Literal["local", "ray"] = "local"  # where the engine's workers run
    ray_address: str | None = None  # an existing Ray cluster; None: start Ray on this machine
    ray_cpus_per_worker: int = 1  # CPUs each Ray worker takes on a node without GPUs
    # L-BFGS reaches Adam's quality in a fraction of the time (BENCHMARKS.md); "adam" is the optimiser of
    # anishathalye/neural-style.
    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    # How every painting is computed (bot/painting.py's EngineChoices holds the defaults, one place):
    # the convolutions' number format ("auto": bfloat16 where a worker measured it clearly faster); what
    # a painting's style is matched by (docs/engine.md, "Style loss": "gram", the Gram matrices of
    # anishathalye/neural-style, or "sliced", the features' whole distribution, which paints strokes where
    # Gram lays a mosaic on big paintings); with the sliced loss, how many of the shallowest style layers
    # are still matched by Gram (0–5); 0, or the decay of the moving average of the iterates (0 < d < 1).
    precision: Precision = EngineChoices.precision
    style_loss: StyleLoss = EngineChoices.style_loss
    gram_layers: int = EngineChoices.gram_layers
    average_decay: float = EngineChoices.average_decay
    default_iterations: int = 100
    # A painting's size unless the chat chose one; None: the largest this host paints within
    # `target_seconds`, from the first worker's probe (bot/app.py), `DEFAULT_SIZE_UNMEASURED` until then.
    default_image_size: int | None = None
    target_seconds: float = 180.0  # the painting time the default size is chosen for
    max_image_size: int = 2048
    # Animations and videos (bot/animations.py): the longest clip taken, the long side its frames are
    # painted at, and how long a clip may hold a worker in painted mode; a clip painted more slowly than
    # that on this host is painted in fast mode (AdaIN per frame) instead. A 2-core CPU host paints a
    # 10-s clip at 360 px in fast mode in a few minutes (BENCHMARKS.md, Animations).
    max_animation_seconds: float = 10.0
    max_animation_size: int = 360
    animation_target_seconds: float = 300.0
    log_level: str = "INFO"
    progress_interval: float = 3.0  # seconds between two edits of a status message
    max_queued_per_user: int = 3
    uploads_per_minute: int = 10  # pictures one user may send in any minute (an album of two counts 2)
    # Pictures one user may send in any 24 hours (admins: no limit). 50 is a busy day of trying styles, and
    # bounds one user's share of the painters (at most 50 paintings) and of the disk (at most 50 uploads
    # of Telegram's 20 MB download limit: 1 GB).
    daily_limit_per_user: int = 50
    retention_days: int = 7  # days a finished job keeps its result files
    # Days a finished job keeps its photo and style upload: nothing paints them again once delivered, so a
    # day covers a retry or a question about it, and a flood costs the disk one day, not a week.
    input_retention_days: int = 1
    # Free bytes on BOT_DATA_DIR's disk below which new pictures are refused: enough for the results and
    # the database of the jobs under way, and for SQLite to keep writing.
    min_free_disk: int = GIB
    webhook_url: str | None = None  # the public URL Telegram posts updates to; None: long polling
    webhook_host: str = "0.0.0.0"  # the address the webhook server binds ("::" for IPv6)
    webhook_port: int = 8443
    # Telegram sends it with every post; a post without it is refused. Never shown, like the token.
    webhook_secret: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Build from environment variables; raise `ConfigError` naming the first bad one."""
        env = os.environ if environ is None else environ
        token = env.get("TELEGRAM_BOT_TOKEN", "").strip()
        if not token:
            raise ConfigError("TELEGRAM_BOT_TOKEN is not set: get a token from @BotFather and export it")
        level = env.get("LOG_LEVEL", "INFO").strip().upper()
        if not isinstance(logging.getLevelName(level), int):
            raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {level!r}")
        weights = env.get("VGG_WEIGHTS", "").strip()
        decoder = env.get("ADAIN_DECODER", "").strip()
        previews = env.get("BOT_PREVIEWS", "on").strip().lower()
        if previews not in ("on", "off", "1", "0", "true", "false"):
            raise ConfigError(f"BOT_PREVIEWS must be on or off, not {previews!r}")
        workers = _int(env, "ENGINE_WORKERS", 0, low=0) or None  # 0 or unset: decide from the GPUs
        backend = env.get("ENGINE_BACKEND", "").strip().lower() or "local"
        if backend not in ("local", "ray"):
            raise ConfigError(f"ENGINE_BACKEND must be local or ray, not {backend!r}")
        optimizer = env.get("DEFAULT_OPTIMIZER", "").strip().lower() or cls.optimizer
        if optimizer not in ("lbfgs", "adam"):
            raise ConfigError(f"DEFAULT_OPTIMIZER must be lbfgs or adam, not {optimizer!r}")
        precision = env.get("ENGINE_PRECISION", "").strip().lower() or cls.precision
        if precision not in ("auto", "float32", "bfloat16"):
            raise ConfigError(f"ENGINE_PRECISION must be auto, float32 or bfloat16, not {precision!r}")
        style_loss = env.get("STYLE_LOSS", "").strip().lower() or cls.style_loss
        if style_loss not in ("gram", "sliced"):
            raise ConfigError(f"STYLE_LOSS must be gram or sliced, not {style_loss!r}")
        average_decay = _float(env, "AVERAGE_DECAY", cls.average_decay, low=0.0)
        if average_decay >= 1.0:
            raise ConfigError(f"AVERAGE_DECAY must be below 1 (0 turns averaging off), not {average_decay}")
        if backend == "ray" and importlib.util.find_spec("ray") is None:
            raise ConfigError("ENGINE_BACKEND=ray needs Ray: python -m pip install 'neural-style-bot[ray]'")
        api_url = env.get("TELEGRAM_API_URL", cls.api_url).strip() or cls.api_url
        webhook_url, webhook_secret = _webhook(env, official=api_url == cls.api_url)
        webhook_host, webhook_port = _listen(env.get("BOT_WEBHOOK_LISTEN", "").strip() or "0.0.0.0:8443")
        return cls(
            token=token,
            api_url=api_url,
            file_url=env.get("TELEGRAM_FILE_URL", cls.file_url).strip() or cls.file_url,
            admin_ids=_ids(env.get("BOT_ADMIN_IDS", "")),
            data_dir=Path(env.get("BOT_DATA_DIR", "").strip() or cls.data_dir),
            weights=Path(weights) if weights else None,
            decoder=Path(decoder) if decoder else None,
            previews=previews in ("on", "1", "true"),
            engine_workers=workers,
            engine_backend="ray" if backend == "ray" else "local",
            ray_address=env.get("RAY_ADDRESS", "").strip() or None,
            ray_cpus_per_worker=_int(env, "RAY_CPUS_PER_WORKER", cls.ray_cpus_per_worker, low=1),
            optimizer="adam" if optimizer == "adam" else "lbfgs",
            precision=cast(Precision, precision),
            style_loss=cast(StyleLoss, style_loss),
            gram_layers=_int(env, "STYLE_GRAM_LAYERS", cls.gram_layers, low=0, high=5),
            average_decay=average_decay,
            default_iterations=_int(env, "DEFAULT_ITERATIONS", cls.default_iterations, low=1, high=5000),
            default_image_size=_int(env, "DEFAULT_IMAGE_SIZE", 0, low=0, high=4096) or None,
            max_image_size=_int(env, "MAX_IMAGE_SIZE", cls.max_image_size, low=64, high=4096),
            target_seconds=_float(env, "BOT_TARGET_SECONDS", cls.target_seconds, low=1.0),
            max_animation_seconds=_float(env, "MAX_ANIMATION_SECONDS", cls.max_animation_seconds, low=1.0),
            max_animation_size=_int(env, "MAX_ANIMATION_SIZE", cls.max_animation_size, low=64, high=2048),
            animation_target_seconds=_float(
                env, "ANIMATION_TARGET_SECONDS", cls.animation_target_seconds, low=1.0
            ),
            log_level=level,
            progress_interval=_float(env, "BOT_PROGRESS_INTERVAL", cls.progress_interval, low=0.0),
            max_queued_per_user=_int(env, "BOT_MAX_QUEUED_PER_USER", cls.max_queued_per_user, low=1),
            uploads_per_minute=_int(env, "BOT_UPLOADS_PER_MINUTE", cls.uploads_per_minute, low=1),
            daily_limit_per_user=_int(env, "BOT_DAILY_LIMIT_PER_USER", cls.daily_limit_per_user, low=1),
            retention_days=_int(env, "BOT_RETENTION_DAYS", cls.retention_days, *RETENTION),
            input_retention_days=_int(env, "BOT_INPUT_RETENTION_DAYS", cls.input_retention_days, *INPUTS),
            min_free_disk=_size(env, "BOT_MIN_FREE_DISK", cls.min_free_disk),
            webhook_url=webhook_url,
            webhook_host=webhook_host,
            webhook_port=webhook_port,
            webhook_secret=webhook_secret,
        )

    @property
    def default_size(self) -> int:
        """The long side of a painting whose chat chose no size (never above MAX_IMAGE_SIZE)."""
        return min(self.default_image_size or DEFAULT_SIZE_UNMEASURED, self.max_image_size)

    @property
    def engine_choices(self) -> EngineChoices:
        """What every painting is computed with: ENGINE_PRECISION, STYLE_LOSS, STYLE_GRAM_LAYERS and
        AVERAGE_DECAY."""
        return EngineChoices(self.precision, self.style_loss, self.gram_layers, self.average_decay)

    @property
    def webhook_path(self) -> str:
        """The path of BOT_WEBHOOK_URL, where the webhook server answers ("/" for a bare host)."""
        return urlsplit(self.webhook_url or "").path or "/"

    def is_admin(self, user_id: int | None) -> bool:
        """Whether this Telegram user id is in BOT_ADMIN_IDS."""
        return user_id is not None and user_id in self.admin_ids


def _ids(text: str) -> frozenset[int]:
    try:
        return frozenset(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise ConfigError(f"BOT_ADMIN_IDS must be comma-separated Telegram user ids, not {text!r}") from None


def _webhook(env: Mapping[str, str], official: bool) -> tuple[str | None, str | None]:
    """BOT_WEBHOOK_URL and BOT_WEBHOOK_SECRET: both unset (long polling), or a usable URL and its secret."""
    url = env.get("BOT_WEBHOOK_URL", "").strip()
    secret = env.get("BOT_WEBHOOK_SECRET", "").strip()
    if not url:
        return None, None
    # Telegram posts only to HTTPS; a local Bot API server (TELEGRAM_API_URL) also posts to plain HTTP.
    schemes = ("https",) if official else ("https", "http")
    try:
        parts = urlsplit(url)
        usable = parts.scheme in schemes and bool(parts.hostname) and not parts.fragment
    except ValueError:  # such as an unclosed [ in an IPv6 host
        usable = False
    if not usable:
        raise ConfigError(
            f"BOT_WEBHOOK_URL must be an {' or '.join(schemes)} URL such as "
            f"https://bot.example.com/telegram, not {url!r}"
        )
    if not secret:
        raise ConfigError(
            "BOT_WEBHOOK_SECRET is not set: with BOT_WEBHOOK_URL it is required (1-256 characters of "
            "A-Z, a-z, 0-9, _ and -), so that only Telegram's posts are handled"
        )
    # The value itself is never repeated: it is a secret.
    if len(secret) > 256:
        raise ConfigError(f"BOT_WEBHOOK_SECRET must be at most 256 characters long, not {len(secret)}")
    if not WEBHOOK_SECRET.fullmatch(secret):
        raise ConfigError("BOT_WEBHOOK_SECRET may only contain A-Z, a-z, 0-9, _ and - (Telegram's rule)")
    return url, secret


def _listen(text: str) -> tuple[str, int]:
    """BOT_WEBHOOK_LISTEN as (host, port): `0.0.0.0:8443`, `127.0.0.1:8443`, `[::]:8443`, `localhost:8443`."""
    usage = f"BOT_WEBHOOK_LISTEN must be host:port such as 0.0.0.0:8443 or [::]:8443, not {text!r}"
    if text.startswith("["):
        host, bracket, port = text[1:].partition("]:")
        if not bracket:
            raise ConfigError(usage)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(usage) from None
    else:
        host, colon, port = text.rpartition(":")
        if not colon or ":" in host or not _is_host(host):
            raise ConfigError(usage)
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise ConfigError(f"BOT_WEBHOOK_LISTEN's port must be between 1 and 65535, not {port!r}")
    return host, int(port)


def _is_host(text: str) -> bool:
    """An IPv4 address or a host name (not a malformed address such as 300.1.2.3)."""
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return bool(HOSTNAME.fullmatch(text)) and not text.replace(".", "").isdigit()
    return True


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int | None = None) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {text!r}") from None
    if value < low or (high is not None and value > high):
        raise ConfigError(f"{name} must be between {low} and {high or 'any'}, not {value}")
    return value


def _size(env: Mapping[str, str], name: str, default: int) -> int:
    """A number of bytes: `1073741824`, `500M`, `2G`, `1.5GiB` (K, M, G and T are powers of 1024)."""
    text = env.get(name, "").strip()
    if not text:
        return default
    match = SIZE.fullmatch(text)
    if match is None:
        raise ConfigError(f"{name} must be a size such as 500M, 2G or a number of bytes, not {text!r}")
    number, unit = match.groups()
    return int(float(number) * SIZE_UNITS[unit.upper()])


def _float(env: Mapping[str, str], name: str, default: float, low: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {text!r}") from None
    if not value >= low:
        raise ConfigError(f"{name} must be at least {low}, not {value}")
    return value
