"""One chat flooding the bot, or told to wait by Telegram, does not hold up another chat.

The bound on the other chat's answer is a fixed second, not scaled: the answer to /help is a few
milliseconds of work and of loopback HTTP, while what it guards against is a wait for the flooding
chat's backlog or for its retry_after (3 s and more), which no slowness of the machine explains.
"""

from __future__ import annotations

import functools
import logging
import time

import pytest

from bot import app as wiring
from bot.ordering import ChatOrderedProcessor
from bot.rate_limit import ChatRateLimiter
from tests.bot.conftest import USER, BotRunner
from tests.bot.fake_telegram import FakeTelegram

FLOODER, OTHER = USER, USER + 1
PROMPT = 1.0  # seconds for another chat's /help to be answered


def backlog_of(updates: int) -> functools.partial[ChatOrderedProcessor]:
    """The bot's update processor with another bound on a chat's backlog."""
    return functools.partial(ChatOrderedProcessor, max_backlog=updates)


async def help_latency(fake: FakeTelegram, chat_id: int) -> float:
    """Seconds from the user's /help to the bot's answer, as the fake server saw both."""
    sent = time.monotonic()
    await fake.user_sends_text(chat_id, chat_id, "/help")
    answers = await fake.wait_for(lambda: [c for c in fake.calls("sendMessage", chat_id=chat_id) if c.status])
    assert answers[0].status == 200
    return answers[0].time - sent


async def test_a_backlog_of_100_updates_does_not_delay_another_chat(
    fake: FakeTelegram, runner: BotRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A backlog longer than the 64 shared slots, answered ten a second so that it lasts (and the stop,
    # which waits for every update fetched, does not take minutes).
    monkeypatch.setattr(wiring, "ChatOrderedProcessor", backlog_of(100))
    monkeypatch.setattr(wiring, "ChatRateLimiter", functools.partial(ChatRateLimiter, private_per_second=10))
    await runner.start()
    for n in range(100):
        await fake.user_sends_text(FLOODER, FLOODER, f"message {n}")
    assert await help_latency(fake, OTHER) < PROMPT
    # The flooding chat was answered in order and is still being answered.
    replies = fake.messages(FLOODER)
    assert 0 < len(replies) < 100


async def test_another_user_is_answered_while_telegram_throttles_a_flooding_chat(
    fake: FakeTelegram,
    runner: BotRunner,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A short backlog keeps the stop short: it waits for the flooding chat's pending updates.
    monkeypatch.setattr(wiring, "ChatOrderedProcessor", backlog_of(5))
    await runner.start()
    fake.flood_limit(FLOODER, per_second=0.5, burst=1, retry_after=3)
    with caplog.at_level(logging.WARNING, logger="bot.ordering"):
        for n in range(120):
            await fake.user_sends_text(FLOODER, FLOODER, f"message {n}")
        await fake.wait_for(lambda: fake.flood_refusals(FLOODER), timeout=10)
        assert await help_latency(fake, OTHER) < PROMPT
    assert f"chat {FLOODER}: 5 updates waiting; dropping its new ones until it catches up" in caplog.messages
    fake.flood_limit(FLOODER, None)
