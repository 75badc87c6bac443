"""`neural-style-bot` / `python -m bot`: start the bot with long polling."""

from __future__ import annotations

import logging
import sys

from bot.config import Config, ConfigError


def main() -> int:
    """Read the configuration, set up logging and run until interrupted."""
    try:
        config = Config.from_env()
    except ConfigError as exc:
        print(f"neural-style-bot: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=config.log_level, stream=sys.stderr
    )
    # httpx logs every request URL at INFO, and Bot API URLs contain the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from bot.app import run

    run(config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
