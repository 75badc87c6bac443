"""The per-chat rate limiter, through a real ExtBot and HTTP to the fake Bot API.

The bounds on other chats are fixed, not scaled: nothing here waits on the CPU, only on the fake's
answers over loopback (milliseconds), while the delay they guard against is a whole retry_after (3 s).
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator

import pytest
from PIL import Image
from telegram import InputMediaPhoto
from telegram.error import RetryAfter
from telegram.ext import ExtBot
from telegram.request import HTTPXRequest

from bot.rate_limit import ChatRateLimiter, droppable
from tests.bot.fake_telegram import FakeTelegram

FLOODED, OTHER = 2000, 2001
RETRY_AFTER = 3
# A request to an unthrottled chat answers in milliseconds; a 429 elsewhere would add RETRY_AFTER.
PROMPT = 1.0


def jpeg(color: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(out, "JPEG")
    return out.getvalue()


async def make_bot(fake: FakeTelegram, limiter: ChatRateLimiter) -> ExtBot[None]:
    bot: ExtBot[None] = ExtBot(
        fake.token,
        base_url=fake.base_url,
        base_file_url=fake.base_file_url,
        request=HTTPXRequest(connection_pool_size=16),  # requests go when the limiter lets them
        rate_limiter=limiter,
    )
    await bot.initialize()
    return bot


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[ExtBot[None]]:
    telegram = await make_bot(fake, ChatRateLimiter())
    yield telegram
    await telegram.shutdown()


async def refused(fake: FakeTelegram, method: str, chat_id: int) -> None:
    await fake.wait_for(lambda: [c for c in fake.calls(method, chat_id=chat_id) if c.status == 429])


async def test_a_429_in_one_chat_holds_only_that_chat(fake: FakeTelegram, bot: ExtBot[None]) -> None:
    status = await bot.send_photo(OTHER, jpeg("red"), caption="0 %")
    fake.fail_next("sendMessage", 429, retry_after=RETRY_AFTER, chat_id=FLOODED)
    flooded = asyncio.create_task(bot.send_message(FLOODED, "hello"))
    await refused(fake, "sendMessage", FLOODED)

    started = time.monotonic()
    await bot.edit_message_media(InputMediaPhoto(jpeg("blue")), chat_id=OTHER, message_id=status.message_id)
    await bot.send_message(OTHER, "ready")
    assert time.monotonic() - started < PROMPT
    assert not flooded.done()  # still waiting out its retry_after

    await flooded
    calls = fake.calls("sendMessage", chat_id=FLOODED)
    assert [c.status for c in calls] == [429, 200]
    assert calls[1].time - calls[0].time >= RETRY_AFTER - 0.1  # tried again once the wait was over
    assert [m.text for m in fake.messages(FLOODED)] == ["hello"]


async def test_droppable_requests_are_dropped_while_their_chat_waits(
    fake: FakeTelegram, bot: ExtBot[None]
) -> None:
    status = await bot.send_photo(FLOODED, jpeg("red"), caption="0 %")
    fake.fail_next("sendMessage", 429, retry_after=RETRY_AFTER, chat_id=FLOODED)
    reply = asyncio.create_task(bot.send_message(FLOODED, "hello"))
    await refused(fake, "sendMessage", FLOODED)

    started = time.monotonic()
    with pytest.raises(RetryAfter), droppable():
        await bot.edit_message_caption(chat_id=FLOODED, message_id=status.message_id, caption="10 %")
    assert time.monotonic() - started < PROMPT
    assert fake.calls("editMessageCaption") == []  # never sent, never retried
    # What is not droppable waits its turn and goes.
    await bot.edit_message_caption(chat_id=FLOODED, message_id=status.message_id, caption="cancelled")
    await reply
    assert fake.messages(FLOODED)[0].text == "cancelled"
    # In a chat with nothing to wait for, a droppable request goes as any other.
    other = await bot.send_photo(OTHER, jpeg("red"), caption="0 %")
    with droppable():
        await bot.edit_message_caption(chat_id=OTHER, message_id=other.message_id, caption="10 %")
    assert fake.messages(OTHER)[0].text == "10 %"


async def test_a_chat_is_paced_within_telegrams_limit(fake: FakeTelegram) -> None:
    bot = await make_bot(fake, ChatRateLimiter(private_per_second=10, burst=2))
    # Telegram counts when requests arrive: a burst a little larger absorbs their jitter on the way.
    fake.flood_limit(FLOODED, per_second=10, burst=4, retry_after=RETRY_AFTER)
    started = time.monotonic()
    await asyncio.gather(*(bot.send_message(FLOODED, f"message {n}") for n in range(12)))
    elapsed = time.monotonic() - started
    await bot.shutdown()
    assert fake.flood_refusals(FLOODED) == 0  # never over the limit, so never told to wait
    assert elapsed >= (12 - 2) / 10 - 0.05  # two at once, then ten a second
    assert sorted(m.text or "" for m in fake.messages(FLOODED)) == sorted(f"message {n}" for n in range(12))


async def test_retries_after_a_429_are_bounded(fake: FakeTelegram) -> None:
    bot = await make_bot(fake, ChatRateLimiter(max_retries=2))
    fake.fail_next("sendMessage", 429, count=5, retry_after=1, chat_id=FLOODED)
    started = time.monotonic()
    with pytest.raises(RetryAfter):
        await bot.send_message(FLOODED, "hello")
    await bot.shutdown()
    assert [c.status for c in fake.calls("sendMessage")] == [429, 429, 429]
    assert time.monotonic() - started >= 2 - 0.1  # each retry waited its second
