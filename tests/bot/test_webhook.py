"""Webhook mode: `python -m bot` with BOT_WEBHOOK_URL serves Telegram's posts, and only Telegram's.

The bot runs as the operator runs it, in a subprocess against the fake Bot API server, which posts updates
to the webhook as Telegram does. Forged posts come straight from the test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from telegram import Bot
from telegram.error import Conflict

from tests.bot.fake_telegram import FakeTelegram, WebhookPost
from tests.bot.fake_telegram.webhook import SECRET_HEADER, WEBHOOK_CONFLICT
from tests.timing import scaled

SECRET = "s3cret_Webhook-token"
PATH = "/telegram/hook.1"  # the dot must match itself only: PTB routes the path as a regular expression
USER = 2000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def until(condition: Callable[[], object], what: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Wait, with a deadline stretched for this machine, until `condition()` is true."""
    deadline = time.monotonic() + scaled(timeout)
    while not condition():
        assert time.monotonic() < deadline, f"not within {scaled(timeout)} s: {what}"
        await asyncio.sleep(0.05)


@dataclass
class RunningBot:
    """`python -m bot` in a subprocess, its log, and where its webhook is served."""

    process: subprocess.Popen[bytes]
    log: Path
    data_dir: Path
    url: str  # BOT_WEBHOOK_URL, or "" when polling
    port: int

    def stop(self) -> int:
        """Stop it as a service manager does (SIGTERM) and return its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=scaled(30))
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def users(self) -> set[int]:
        """The users the bot recorded (each /start records its sender)."""
        with sqlite3.connect(f"file:{self.data_dir / 'bot.sqlite3'}?mode=ro", uri=True, timeout=5) as db:
            return {row[0] for row in db.execute("SELECT user_id FROM users")}


def start_bot(fake: FakeTelegram, workdir: Path, weights: Path, port: int = 0, **env: str) -> RunningBot:
    """`python -m bot` on the tiny weights with one engine worker; `env` adds or overrides variables."""
    log = workdir / "bot.log"
    base = {"VGG_WEIGHTS": str(weights), "BOT_DATA_DIR": str(workdir / "data")}
    base |= {"BOT_PREVIEWS": "off", "ENGINE_WORKERS": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot"],
            env=os.environ | fake.env() | base | env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return RunningBot(process, log, workdir / "data", env.get("BOT_WEBHOOK_URL", ""), port)


@pytest.fixture(scope="module")
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram().run_in_thread() as fake:
        yield fake


@pytest.fixture(scope="module")
def webhook_bot(
    telegram: FakeTelegram, tmp_path_factory: pytest.TempPathFactory, tiny_weights_file: Path
) -> Iterator[RunningBot]:
    """One bot in webhook mode for the module: a start and stop take seconds (the worker loads TensorFlow)."""
    port = free_port()
    bot = start_bot(
        telegram,
        tmp_path_factory.mktemp("webhook-bot"),
        tiny_weights_file,
        port,
        BOT_WEBHOOK_URL=f"http://127.0.0.1:{port}{PATH}",
        BOT_WEBHOOK_SECRET=SECRET,
        BOT_WEBHOOK_LISTEN=f"127.0.0.1:{port}",
        LOG_LEVEL="DEBUG",  # python-telegram-bot then logs setWebhook's parameters: the secret must not show
    )
    yield bot
    assert bot.stop() == 0, bot.log.read_text()


@pytest.fixture
async def serving(telegram: FakeTelegram, webhook_bot: RunningBot) -> RunningBot:
    """The module's bot once its webhook is set and its server accepts connections."""
    await until(
        lambda: telegram.calls("setWebhook") or webhook_bot.process.poll() is not None, "setWebhook", 60
    )
    assert webhook_bot.process.poll() is None, webhook_bot.log.read_text()
    deadline = time.monotonic() + scaled(10)
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", webhook_bot.port)
        except OSError:
            assert time.monotonic() < deadline, webhook_bot.log.read_text()
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return webhook_bot


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=scaled(10))) as session:
        yield session


def start_update(update_id: int, user_id: int) -> dict[str, object]:
    """A /start from a user in their private chat, as Telegram would post it."""
    user = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}", "language_code": "en"}
    message = {
        "message_id": 1,
        "date": int(time.time()),
        "chat": {"id": user_id, "type": "private", "first_name": user["first_name"]},
        "from": user,
        "text": "/start",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
    }
    return {"update_id": update_id, "message": message}


async def post(http: aiohttp.ClientSession, url: str, body: object, secret: str | None) -> int:
    headers = {} if secret is None else {SECRET_HEADER: secret}
    async with http.post(url, json=body, headers=headers) as response:
        return response.status


async def test_the_bot_sets_its_webhook_and_answers_a_user_through_it(
    telegram: FakeTelegram, serving: RunningBot
) -> None:
    [call] = telegram.calls("setWebhook")
    assert call.params["url"] == serving.url
    assert call.params["secret_token"] == SECRET
    assert call.params["allowed_updates"] == ["message", "callback_query"]
    assert telegram.webhook_info()["url"] == serving.url

    action = await telegram.user_sends_text(USER, USER, "/start")

    reply = await telegram.wait_for_message(USER, timeout=20)
    assert reply.text
    assert telegram.webhook_posts()[-1] == WebhookPost(action.update_id, serving.url, 200, "")
    assert telegram.pending_updates() == []
    assert telegram.calls("getUpdates") == []  # the webhook alone brought the update
    assert USER in serving.users()


async def test_a_post_without_the_secret_is_refused_and_does_nothing(
    telegram: FakeTelegram, serving: RunningBot, http: aiohttp.ClientSession
) -> None:
    forger, control = 3001, 3002
    forged = start_update(900_001, forger)

    assert await post(http, serving.url, forged, secret=None) == 403
    assert await post(http, serving.url, forged, secret="not-the-secret") == 403
    assert await post(http, serving.url, forged, secret=SECRET[:-1]) == 403

    # The same post with the secret is taken: the refusals above were for the secret alone. Had a forged
    # update been queued, it would have been handled before this one (its database write first).
    assert await post(http, serving.url, start_update(900_002, control), secret=SECRET) == 200
    await telegram.wait_for_message(control, timeout=20)
    assert control in serving.users()
    assert forger not in serving.users()
    assert telegram.messages(forger) == []
    assert telegram.calls("sendMessage", chat_id=forger) == []


async def test_only_the_webhook_urls_path_is_served(
    telegram: FakeTelegram, serving: RunningBot, http: aiohttp.ClientSession
) -> None:
    stranger, control = 3003, 3004
    root = f"http://127.0.0.1:{serving.port}"
    for path in ("/", "/telegram", "/telegram/hook", "/telegram/hookx1", f"{PATH}/", f"{PATH}/x", f"{PATH}x"):
        assert await post(http, root + path, start_update(900_003, stranger), secret=SECRET) == 404, path
    async with http.get(serving.url, headers={SECRET_HEADER: SECRET}) as response:
        assert response.status == 405

    assert await post(http, root + PATH, start_update(900_004, control), secret=SECRET) == 200
    await telegram.wait_for_message(control, timeout=20)
    assert stranger not in serving.users()
    assert telegram.calls("sendMessage", chat_id=stranger) == []


async def test_the_secret_and_the_token_are_never_logged(telegram: FakeTelegram, serving: RunningBot) -> None:
    log = serving.log.read_text()
    assert "setWebhook" in log  # logged with its parameters at DEBUG, so the redaction was needed
    assert "secret_token': '<secret>'" in log
    assert SECRET not in log
    assert telegram.token not in log


async def test_polling_again_deletes_the_webhook_and_gets_what_waited(
    tmp_path: Path, tiny_weights_file: Path
) -> None:
    with FakeTelegram().run_in_thread() as telegram:
        # What a webhook start left behind, with its host gone: Telegram keeps the update and retries.
        gone = f"http://127.0.0.1:{free_port()}/hook"
        async with Bot(telegram.token, base_url=telegram.base_url) as bot:
            await bot.set_webhook(gone, secret_token=SECRET, allowed_updates=["message"])
        action = await telegram.user_sends_text(USER, USER, "/start")
        await until(lambda: telegram.webhook_posts(), "a post to the old webhook")
        assert telegram.webhook_posts()[0].status is None  # nobody answers there
        assert telegram.webhook_info()["pending_update_count"] == 1

        polling = start_bot(telegram, tmp_path, tiny_weights_file)
        try:
            await telegram.wait_for_message(USER, timeout=60)
        finally:
            assert polling.stop() == 0, polling.log.read_text()

    deleted = telegram.calls("deleteWebhook")
    polls = [c for c in telegram.calls("getUpdates") if c.status == 200]
    assert deleted, telegram.dump_calls()
    assert deleted[0].time < polls[0].time
    assert telegram.webhook_info()["url"] == ""
    assert {p.update_id for p in telegram.webhook_posts()} == {action.update_id}


def test_a_taken_port_stops_the_start_before_telegram_is_told(
    tmp_path: Path, tiny_weights_file: Path
) -> None:
    with FakeTelegram().run_in_thread() as telegram, socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = {"BOT_WEBHOOK_URL": f"http://127.0.0.1:{port}{PATH}", "BOT_WEBHOOK_SECRET": SECRET}
        bot = start_bot(
            telegram, tmp_path, tiny_weights_file, port, **env, BOT_WEBHOOK_LISTEN=f"127.0.0.1:{port}"
        )
        status = bot.process.wait(timeout=scaled(60))

    last = bot.log.read_text().strip().splitlines()[-1]
    assert status == 2, bot.log.read_text()
    assert (
        f"ERROR bot: BOT_WEBHOOK_LISTEN: cannot listen on 127.0.0.1 port {port}: Address already in" in last
    )
    assert telegram.calls() == []  # no setWebhook pointing at someone else's server


# The fake's webhook on its own: what the tests above rely on, against a stand-in for the bot.


@dataclass
class Receiver:
    """A web server that answers the fake's posts with the statuses it is given, and keeps what came."""

    statuses: list[int]
    received: list[tuple[str | None, Any]]  # the secret header and the JSON body of each post
    url: str = ""


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    got = Receiver(statuses=[], received=[])

    async def handle(request: web.Request) -> web.Response:
        got.received.append((request.headers.get(SECRET_HEADER), await request.json()))
        return web.Response(status=got.statuses.pop(0) if got.statuses else 200)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    got.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    yield got
    await runner.cleanup()


async def test_the_fake_posts_updates_with_the_secret_and_retries_until_taken(receiver: Receiver) -> None:
    receiver.statuses = [403, 500]
    async with FakeTelegram() as telegram, Bot(telegram.token, base_url=telegram.base_url) as bot:
        first = await telegram.user_sends_text(USER, USER, "before")  # pending until there is a webhook
        assert await bot.set_webhook(receiver.url, secret_token=SECRET, allowed_updates=["message"])
        second = await telegram.user_sends_text(USER, USER, "after")

        await until(lambda: len(receiver.received) == 4, "four posts")
        info = await bot.get_webhook_info()

    assert [(secret, body["update_id"]) for secret, body in receiver.received] == [
        (SECRET, first.update_id),
        (SECRET, first.update_id),
        (SECRET, first.update_id),
        (SECRET, second.update_id),
    ]
    assert [p.status for p in telegram.webhook_posts()] == [403, 500, 200, 200]
    assert receiver.received[-1][1]["message"]["text"] == "after"
    assert (info.url, info.pending_update_count) == (receiver.url, 0)
    assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
    assert info.allowed_updates == ("message",)


async def test_the_fake_refuses_get_updates_while_a_webhook_is_set(receiver: Receiver) -> None:
    async with FakeTelegram() as telegram, Bot(telegram.token, base_url=telegram.base_url) as bot:
        poll = asyncio.create_task(bot.get_updates(timeout=5))
        await until(lambda: telegram.calls("getUpdates"), "the long poll")
        await bot.set_webhook(receiver.url, secret_token=SECRET)
        with pytest.raises(Conflict, match="webhook is active"):
            await poll  # a long poll under way ends too
        assert telegram.calls("getUpdates")[-1].description == WEBHOOK_CONFLICT

        assert await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""
        action = await telegram.user_sends_text(USER, USER, "polled")
        [update] = await bot.get_updates(timeout=1)

    assert update.update_id == action.update_id
    assert receiver.received == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"url": "not a url"}, "bad webhook"),
        ({"url": "https://bot.example.com/h", "secret_token": "no spaces"}, "secret token contains"),
        ({"url": "https://bot.example.com/h", "secret_token": "x" * 257}, "secret token contains"),
    ],
)
async def test_the_fake_refuses_what_telegram_refuses(params: dict[str, str], message: str) -> None:
    async with FakeTelegram() as telegram, aiohttp.ClientSession() as http:
        status, body = await call(http, f"{telegram.base_url}{telegram.token}/setWebhook", params)
    assert status == 400
    assert message in body["description"]
    assert telegram.webhook_info()["url"] == ""


async def call(http: aiohttp.ClientSession, url: str, params: dict[str, str]) -> tuple[int, Any]:
    async with http.post(url, json=params) as response:
        return response.status, await response.json()
