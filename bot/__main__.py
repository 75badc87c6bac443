"""`neural-style-bot` / `python -m bot`: start the bot (long polling, or a webhook with BOT_WEBHOOK_URL)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

from bot.config import Config, ConfigError


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


def main() -> int:
    """Read the configuration, set up logging and run until interrupted."""
    try:
        config = Config.from_env()
    except ConfigError as exc:
        print(f"neural-style-bot: {exc}", file=sys.stderr)
        return 2
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


if __name__ == "__main__":
    raise SystemExit(main())
