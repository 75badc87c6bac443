"""The bot process SIGKILLed at awkward moments: on restart every job completes, each result arrives once.

The bot runs as a real subprocess (`python -m bot`) against the fake Bot API server in a thread; its log
is also checked for the token.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.i18n import texts_in
from engine.workers.jobs import Failure, Outcome
from storage import MAX_ATTEMPTS
from tests.bot.conftest import USER, jpeg, photos
from tests.bot.fake_telegram import FakeTelegram
from tests.timing import scaled

texts = texts_in("en")  # the fake's users speak English

# Deadlines on the bot's start and on painting; `scaled` stretches them on a slower machine. The fake
# server's holds (`hold=60`) are network timings and stay fixed.
START_TIMEOUT = 60.0
JOB_TIMEOUT = 120.0
# Iterations of a job that must still be running when the bot is killed (several seconds of L-BFGS at
# 64 px here), and of one that only has to finish: the bot's own default.
LONG_JOB = 600
SHORT_JOB = 100


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:  # type: ignore[override]
    with FakeTelegram().run_in_thread() as server:
        yield server


class BotProcess:
    """`python -m bot` with the test's configuration; its stderr collects in a log file."""

    def __init__(self, fake: FakeTelegram, data_dir: Path, weights: Path, log: Path) -> None:
        self.env = {
            **os.environ,
            **fake.env(),
            "BOT_DATA_DIR": str(data_dir),
            "VGG_WEIGHTS": str(weights),
            "ENGINE_WORKERS": "1",
            "DEFAULT_ITERATIONS": str(SHORT_JOB),
            "MAX_IMAGE_SIZE": "64",
            "BOT_PROGRESS_INTERVAL": "0.3",
            "LOG_LEVEL": "DEBUG",
        }
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "bot"], env=self.env, stderr=out)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(scaled(30))  # the engine workers stop too
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def bot(fake: FakeTelegram, tmp_path: Path, tiny_weights_file: Path) -> Iterator[BotProcess]:
    process = BotProcess(fake, tmp_path / "data", tiny_weights_file, tmp_path / "bot.log")
    yield process
    process.stop()
    log = process.log.read_text(errors="replace")
    # The token never reaches the log, not even through library request logging or tracebacks.
    assert fake.token not in log
    assert fake.token.split(":")[1] not in log


def jobs(data_dir: Path) -> list[tuple[int, str, int]]:
    with sqlite3.connect(data_dir / "bot.sqlite3") as db:
        return db.execute("SELECT id, status, attempts FROM jobs ORDER BY id").fetchall()


async def submit(fake: FakeTelegram, chat_id: int) -> None:
    await fake.user_sends_photo(chat_id, chat_id, jpeg(40, 40, seed=1))
    await fake.user_sends_photo(chat_id, chat_id, jpeg(40, 40, seed=2))


async def marked_delivered(fake: FakeTelegram, data_dir: Path) -> None:
    """Until every job has its delivered mark, written just after the send the fake server already saw.

    Stopping the bot between the two would leave a job `done`, for the next start to send again.
    """
    await fake.wait_for(lambda: all(status == "delivered" for _, status, _ in jobs(data_dir)), timeout=10)


def painting(fake: FakeTelegram, chat_id: int) -> bool:
    return any("Painting" in (m.text or "") for m in fake.messages(chat_id))


async def test_killed_while_running_and_queued(fake: FakeTelegram, bot: BotProcess) -> None:
    bot.env["DEFAULT_ITERATIONS"] = str(LONG_JOB)
    bot.start()
    other = USER + 1
    await submit(fake, USER)
    await fake.wait_for(lambda: painting(fake, USER), timeout=START_TIMEOUT)
    await submit(fake, other)
    await fake.wait_for(lambda: any("Queued" in (m.text or "") for m in fake.messages(other)), timeout=20)
    bot.kill()
    assert jobs(Path(bot.env["BOT_DATA_DIR"])) == [(1, "running", 0), (2, "queued", 0)]

    bot.start()
    await fake.wait_for(lambda: photos(fake, USER) and photos(fake, other), timeout=JOB_TIMEOUT)
    await marked_delivered(fake, Path(bot.env["BOT_DATA_DIR"]))
    bot.stop()
    assert len(photos(fake, USER)) == len(photos(fake, other)) == 1
    assert jobs(Path(bot.env["BOT_DATA_DIR"])) == [(1, "delivered", 1), (2, "delivered", 0)]


async def test_killed_after_the_result_was_written_before_it_was_sent(
    fake: FakeTelegram, bot: BotProcess
) -> None:
    # The result goes into the job's status picture; that edit hangs and never takes effect.
    fake.fail_next("editMessageMedia", "timeout", hold=60)
    bot.start()
    await submit(fake, USER)
    await fake.wait_for(lambda: fake.calls("editMessageMedia"), timeout=JOB_TIMEOUT)
    bot.kill()
    data_dir = Path(bot.env["BOT_DATA_DIR"])
    assert jobs(data_dir) == [(1, "done", 0)]
    assert (data_dir / "results").is_dir()
    assert photos(fake, USER) == []

    bot.start()
    await fake.wait_for(lambda: photos(fake, USER), timeout=START_TIMEOUT)
    await marked_delivered(fake, data_dir)
    bot.stop()
    assert len(photos(fake, USER)) == 1
    assert jobs(data_dir) == [(1, "delivered", 0)]


async def test_killed_while_downloading_the_photo(fake: FakeTelegram, bot: BotProcess) -> None:
    fake.fail_next("download", "timeout", hold=60)
    bot.start()
    await fake.user_sends_photo(USER, USER, jpeg(40, 40, seed=1))
    await fake.wait_for(lambda: fake.calls("download"), timeout=START_TIMEOUT)
    bot.kill()

    bot.start()
    # The photo whose download was cut off is fetched again and counts as the content.
    await fake.wait_for(
        lambda: any("Got your photo" in (m.text or "") for m in fake.messages(USER)),
        timeout=START_TIMEOUT,
    )
    await fake.user_sends_photo(USER, USER, jpeg(40, 40, seed=2))
    await fake.wait_for(lambda: photos(fake, USER), timeout=JOB_TIMEOUT)
    await marked_delivered(fake, Path(bot.env["BOT_DATA_DIR"]))
    bot.stop()
    assert len(photos(fake, USER)) == 1


async def test_a_result_lost_to_a_power_cut_is_painted_again(fake: FakeTelegram, bot: BotProcess) -> None:
    # As in the test above, the bot stops with the result written but not sent; then the power cut
    # leaves the file empty (a rename not yet on disk).
    fake.fail_next("editMessageMedia", "timeout", hold=60)
    bot.start()
    await submit(fake, USER)
    await fake.wait_for(lambda: fake.calls("editMessageMedia"), timeout=JOB_TIMEOUT)
    bot.kill()
    data_dir = Path(bot.env["BOT_DATA_DIR"])
    [result] = (data_dir / "results").iterdir()
    result.write_bytes(b"")

    bot.start()
    await fake.wait_for(lambda: photos(fake, USER), timeout=JOB_TIMEOUT)
    await marked_delivered(fake, data_dir)
    bot.stop()
    assert len(photos(fake, USER)) == 1
    assert jobs(data_dir) == [(1, "delivered", 1)]  # painted again, one attempt spent on the loss
    [status] = [m for m in fake.messages(USER) if m.kind == "photo"]
    assert any(version.text == texts.repainting for version in status.history)


async def test_a_job_out_of_attempts_at_a_restart_is_told_and_loses_its_button(
    fake: FakeTelegram, bot: BotProcess
) -> None:
    bot.env["DEFAULT_ITERATIONS"] = str(LONG_JOB)
    bot.start()
    await submit(fake, USER)
    await fake.wait_for(lambda: painting(fake, USER), timeout=START_TIMEOUT)
    bot.kill()
    data_dir = Path(bot.env["BOT_DATA_DIR"])
    # Two earlier runs of it were lost the same way: this was its last.
    with sqlite3.connect(data_dir / "bot.sqlite3") as db:
        db.execute("UPDATE jobs SET attempts = ? WHERE id = 1", (MAX_ATTEMPTS - 1,))
    db.close()

    bot.start()
    failed = texts.job_failed(Outcome.failed("1", Failure.WORKER_DIED, ""))
    statuses = lambda: [m for m in fake.messages(USER) if m.kind == "photo"]  # noqa: E731
    await fake.wait_for(lambda: [m for m in statuses() if m.text == failed], timeout=START_TIMEOUT)
    [status] = statuses()
    assert status.buttons == []
    assert jobs(data_dir) == [(1, "failed", MAX_ATTEMPTS)]


async def test_a_photo_replayed_after_a_crash_waits_for_its_style(
    fake: FakeTelegram, bot: BotProcess
) -> None:
    # Killed while Telegram is slow to take the "got your photo" answer: the photo was already the
    # chat's content, and the update is handled again at the next start.
    fake.fail_next("sendMessage", "timeout", hold=60)
    bot.start()
    await fake.user_sends_photo(USER, USER, jpeg(40, 40, seed=1))
    await fake.wait_for(lambda: fake.calls("sendMessage"), timeout=START_TIMEOUT)
    bot.kill()

    bot.start()
    await fake.wait_for(
        lambda: any(texts.content_received in (m.text or "") for m in fake.messages(USER)),
        timeout=START_TIMEOUT,
    )
    data_dir = Path(bot.env["BOT_DATA_DIR"])
    assert jobs(data_dir) == []  # not paired with itself
    await fake.user_sends_photo(USER, USER, jpeg(40, 40, seed=2))
    await fake.wait_for(lambda: photos(fake, USER), timeout=JOB_TIMEOUT)
    await marked_delivered(fake, data_dir)
    bot.stop()
    assert len(photos(fake, USER)) == 1
    assert jobs(data_dir) == [(1, "delivered", 0)]
