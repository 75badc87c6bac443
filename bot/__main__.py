"""`neural-style-bot` / `python -m bot`: start the bot (long polling, or a webhook with BOT_WEBHOOK_URL);
`--check` checks the configuration, the data directory and the token with Telegram, and exits."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence

from bot.config import Config, ConfigError

# What @BotFather hands out: the bot's numeric id, a colon, and a 35-character secret.
TOKEN_FORMAT = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{30,}")


class RedactSecrets(logging.Filter):
    """Replace each secret wherever it would appear in a log line, tracebacks included."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        super().__init__()
        self.secrets = {secret: name for secret, name in secrets.items() if secret}  # secret -> "<name>"

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        for secret, name in self.secrets.items():
            if secret in message or (record.exc_text and secret in record.exc_text):
                message = message.replace(secret, name)
                record.msg, record.args = message, None
                if record.exc_text:
                    record.exc_text = record.exc_text.replace(secret, name)
        return True


def main(argv: Sequence[str] | None = None) -> int:
    """Read the configuration, set up logging and run until interrupted (or only check, with --check)."""
    parser = argparse.ArgumentParser(prog="neural-style-bot", description=__doc__)
    parser.add_argument(
        "--check",
        action="store_true",
        help="check the settings, the data directory and the token with Telegram (getMe), then exit; "
        "`neural-style doctor` checks the engine",
    )
    args = parser.parse_args(argv)
    try:
        config = Config.from_env()
    except ConfigError as exc:
        print(f"neural-style-bot: {exc}", file=sys.stderr)
        return 2
    if args.check:
        return check(config)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # Bot API URLs contain the token, and libraries log URLs (httpx at INFO, errors with their request);
    # python-telegram-bot logs setWebhook's parameters, the secret among them, at DEBUG.
    handler.addFilter(RedactSecrets({config.token: "<token>", config.webhook_secret or "": "<secret>"}))
    logging.basicConfig(level=config.log_level, handlers=[handler])
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from telegram.error import InvalidToken, NetworkError

    from bot.app import run
    from engine.weights import WeightsError

    logger = logging.getLogger("bot")
    # Python's own report of these would print the token (PTB's InvalidToken message contains it).
    try:
        run(config)
    except ConfigError as exc:
        logger.error("%s", exc)
        return 2
    except InvalidToken:
        logger.error(
            "Telegram refused TELEGRAM_BOT_TOKEN: check it with @BotFather, and that TELEGRAM_API_URL "
            "(%s) is a Bot API server",
            config.api_url,
        )
        return 2
    except NetworkError as exc:
        logger.error("could not reach Telegram at TELEGRAM_API_URL (%s): %s", config.api_url, exc)
        return 2
    except WeightsError as exc:
        logger.error("cannot start without the VGG-19 weights: %s", exc)
        return 2
    except Exception:
        logger.exception("the bot stopped on an unexpected error")
        return 1
    return 0


def check(config: Config) -> int:
    """`--check`: each check's result on stdout, the first failure's reason on stderr (exit code 2)."""
    try:
        for line in _checks(config):
            print(line)
    except ConfigError as exc:
        print(f"neural-style-bot --check: {str(exc).replace(config.token, '<token>')}", file=sys.stderr)
        return 2
    print("ready to start; `neural-style doctor` checks the engine on this host")
    return 0


def _checks(config: Config) -> list[str]:
    """The checks in order, each a line; `ConfigError` at the first that fails."""
    if not TOKEN_FORMAT.fullmatch(config.token):
        raise ConfigError(
            "TELEGRAM_BOT_TOKEN is not a bot token: @BotFather's look like 123456789:AAE… (digits, a colon, "
            "then 35 letters, digits, - and _)"
        )
    lines = ["settings: read; TELEGRAM_BOT_TOKEN is well formed"]
    folder = config.data_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".check-"):
            pass
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        raise ConfigError(f"BOT_DATA_DIR ({folder}) cannot be written: {exc.strerror or exc}") from None
    lines.append(f"data directory: {folder.resolve()} is writable, {free / 1024**3:.1f} GiB free")
    lines.append(asyncio.run(_get_me(config)))
    return lines


async def _get_me(config: Config) -> str:
    """Ask the Bot API who the token belongs to (getMe): the line that says so, or `ConfigError`."""
    from telegram import Bot
    from telegram.error import InvalidToken, NetworkError

    try:
        async with Bot(config.token, base_url=config.api_url, base_file_url=config.file_url) as bot:
            me = bot.bot  # `initialize` asked getMe
    except InvalidToken:
        raise ConfigError(
            f"Telegram refused TELEGRAM_BOT_TOKEN: check it with @BotFather, and that TELEGRAM_API_URL "
            f"({config.api_url}) is a Bot API server"
        ) from None
    except NetworkError as exc:
        raise ConfigError(
            f"the Bot API at TELEGRAM_API_URL ({config.api_url}) cannot be reached: {exc}"
        ) from None
    return f"Telegram: the token is @{me.username}'s (id {me.id}), at {config.api_url}"


if __name__ == "__main__":
    raise SystemExit(main())
