"""One chat floods the real bot (a subprocess); how long does another user wait for /help?

Two scenarios through the fake Bot API server:

- backlog: one chat sends 100 messages at once, and right after them another user sends /help;
- 429: the fake answers the flooding chat 429 beyond one call every two seconds (retry_after 3 s, as
  Telegram's flood control does), the chat sends 120 messages, and once its first 429 has come another
  user sends /help.

The number is the time from the other user's /help to the bot's answer, as the fake server saw both.
`--source` runs the bot from another tree (e.g. an export of an older commit) to compare.

    python bench/chat_flood.py
    python bench/chat_flood.py --source /tmp/before
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.weights import synthetic  # noqa: E402
from tests.bot.fake_telegram import FakeTelegram  # noqa: E402

FLOODER, OTHER = 10_001, 10_002


async def help_latency(fake: FakeTelegram, chat_id: int) -> float:
    """Seconds from the user's /help to the bot's answer (as the fake server saw both)."""
    before = len(fake.calls("sendMessage", chat_id=chat_id))
    sent = time.monotonic()
    await fake.user_sends_text(chat_id, chat_id, "/help")
    calls = await fake.wait_for(
        lambda: [c for c in fake.calls("sendMessage", chat_id=chat_id)[before:] if c.status == 200] or None,
        timeout=120,
        interval=0.002,
    )
    return calls[0].time - sent


async def scenario(name: str, messages: int, source: Path, data_dir: Path, weights: Path) -> float:
    with FakeTelegram().run_in_thread() as fake:
        env = {
            **os.environ,
            **fake.env(),
            "PYTHONPATH": str(source),
            "BOT_DATA_DIR": str(data_dir / name),
            "VGG_WEIGHTS": str(weights),
            "ENGINE_WORKERS": "1",
            "BOT_PREVIEWS": "off",
            "LOG_LEVEL": "WARNING",
        }
        bot = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", env=env, cwd=source)
        try:
            await fake.wait_for(lambda: fake.calls("setMyCommands"), timeout=120)
            await help_latency(fake, OTHER)  # the other user is known and the bot warmed up
            if name == "429":
                fake.flood_limit(FLOODER, per_second=0.5, burst=1, retry_after=3)
            for i in range(messages):
                await fake.user_sends_text(FLOODER, FLOODER, f"message {i}")
            if name == "429":
                await fake.wait_for(lambda: fake.flood_refusals(FLOODER), timeout=60)
            return await help_latency(fake, OTHER)
        finally:
            bot.send_signal(signal.SIGKILL)  # a stop would wait for the whole backlog
            await bot.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", type=Path, default=ROOT, help="the bot's source tree to run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenario", choices=["backlog", "429"], action="append", help="default: both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "tiny.npz"
        synthetic(channels=4).save(weights)
        for name in args.scenario or ["backlog", "429"]:
            messages = {"backlog": 100, "429": 120}[name]
            seconds = [
                asyncio.run(scenario(name, messages, args.source.resolve(), Path(tmp) / str(run), weights))
                for run in range(args.runs)
            ]
            print(f"{name}: other chat's /help answered in " + ", ".join(f"{s:.2f}" for s in seconds) + " s")


if __name__ == "__main__":
    main()
