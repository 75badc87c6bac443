"""Load test: many users at once through the real bot (a subprocess) and the fake Bot API server.

Every user sends a content photo and a style photo at the same moment; while the engine workers are
busy, users keep asking /status. The run checks that every job is delivered exactly once and that jobs
started in submission order (FIFO), and reports /status latency and throughput.

    python bench/load_bot.py --users 25
    python bench/load_bot.py --users 100 --iterations 100
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.weights import synthetic  # noqa: E402
from tests.bot.conftest import jpeg  # noqa: E402
from tests.bot.fake_telegram import FakeTelegram  # noqa: E402

FIRST_USER = 10_000


async def status_latency(fake: FakeTelegram, chat_id: int) -> float:
    """Seconds from the user's /status to the bot's answer (as the fake server saw both)."""
    before = len(fake.calls("sendMessage", chat_id=chat_id))
    sent = time.monotonic()
    await fake.user_sends_text(chat_id, chat_id, "/status")
    calls = await fake.wait_for(
        lambda: fake.calls("sendMessage", chat_id=chat_id)[before:] or None, timeout=30, interval=0.002
    )
    return calls[0].time - sent


async def run(
    users: int, iterations: int, workers: int, probes: int, data_dir: Path, weights: Path
) -> dict[str, float]:
    with FakeTelegram().run_in_thread() as fake:
        env = {
            **os.environ,
            **fake.env(),
            "BOT_DATA_DIR": str(data_dir),
            "VGG_WEIGHTS": str(weights),
            "ENGINE_WORKERS": str(workers),
            "DEFAULT_ITERATIONS": str(iterations),
            "MAX_IMAGE_SIZE": "64",
            "LOG_LEVEL": "WARNING",
        }
        bot = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", env=env)
        try:
            await fake.wait_for(lambda: fake.calls("setMyCommands"), timeout=60)
            chats = [FIRST_USER + i for i in range(users)]
            content, style = jpeg(64, 48, seed=1), jpeg(48, 48, seed=2)
            started = time.monotonic()
            for chat in chats:  # all at once: nothing waits for the bot between users
                await fake.user_sends_photo(chat, chat, content)
                await fake.user_sends_photo(chat, chat, style)
            await fake.wait_for(
                lambda: all(fake.calls("sendMessage", chat_id=c) for c in chats[-1:]) or None, timeout=120
            )
            latencies = []
            rng = random.Random(0)

            def results(chat: int) -> int:
                # The status message is a photo (the picture's thumbnail), not a result; the result replaces
                # its picture (editMessageMedia) or, failing that, comes as a new photo or document.
                return (
                    len(fake.calls("editMessageMedia", chat_id=chat))
                    + len(fake.calls("sendPhoto", chat_id=chat))
                    + len(fake.calls("sendDocument", chat_id=chat))
                    - 1
                )

            def delivered() -> int:
                return len([c for c in chats if results(c) > 0])

            # Only answers timed while jobs are still waiting count: every worker is busy then.
            while len(latencies) < probes and delivered() < users - workers:
                latency = await status_latency(fake, rng.choice(chats))
                if delivered() < users - workers:
                    latencies.append(latency)
                await asyncio.sleep(0.05)
            assert len(latencies) == probes, (
                f"the queue ran dry after {len(latencies)} probes; raise --iterations"
            )
            await fake.wait_for(
                lambda: all(results(c) > 0 for c in chats) or None,
                timeout=3600,
                interval=0.2,
            )
            elapsed = time.monotonic() - started
            photos = {c: results(c) for c in chats}
        finally:
            bot.send_signal(signal.SIGINT)
            await asyncio.wait_for(bot.wait(), 60)
    with sqlite3.connect(data_dir / "bot.sqlite3") as db:
        rows = db.execute("SELECT id, chat_id, status, started_at FROM jobs ORDER BY id").fetchall()
    lost = [c for c, n in photos.items() if n == 0]
    duplicated = [c for c, n in photos.items() if n > 1]
    start_order = [r[0] for r in sorted(rows, key=lambda r: r[3])]
    assert not lost, f"users without a result: {lost}"
    assert not duplicated, f"users with more than one result: {duplicated}"
    assert len(rows) == users, f"{len(rows)} jobs for {users} users"
    assert all(r[2] == "delivered" for r in rows), "some jobs are not delivered"
    assert start_order == sorted(start_order), "jobs did not start in submission (FIFO) order"
    latencies.sort()
    return {
        "users": users,
        "jobs delivered": len(rows),
        "wall seconds": round(elapsed, 1),
        "jobs per minute": round(60 * users / elapsed, 1),
        "status probes": len(latencies),
        "status p50 ms": round(1000 * statistics.median(latencies), 1),
        "status p95 ms": round(1000 * latencies[max(0, int(0.95 * len(latencies)) - 1)], 1),
        "status max ms": round(1000 * latencies[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=25)
    parser.add_argument("--iterations", type=int, default=300, help="iterations per job (tiny network)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--probes", type=int, default=60, help="/status requests timed while workers are busy"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "tiny.npz"
        synthetic(channels=4).save(weights)
        result = asyncio.run(
            run(args.users, args.iterations, args.workers, args.probes, Path(tmp) / "data", weights)
        )
    print("| " + " | ".join(result) + " |")
    print("|" + "---:|" * len(result))
    print("| " + " | ".join(str(v) for v in result.values()) + " |")


if __name__ == "__main__":
    main()
