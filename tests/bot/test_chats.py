"""Which updates make work: new private messages only; chats are served side by side, each in order."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from bot.context import BotApplication
from bot.i18n import texts_in
from bot.intake import CALLBACK_DATA_LIMIT
from storage import JobStatus, Store
from tests.bot.conftest import ADMIN, USER, BotRunner, eventually, jpeg, text_containing
from tests.bot.fake_telegram import FakeTelegram

texts = texts_in("en")  # the fake's users speak English

OTHER = USER + 1


def store_of(app: BotApplication) -> Store:
    return app.bot_data.store


async def answered(fake: FakeTelegram, chat_id: int, user_id: int) -> None:
    """Send /status and wait for its answer: everything the chat sent before has been handled by then."""
    before = len(fake.messages(chat_id))
    await fake.user_sends_text(chat_id, user_id, "/status")
    await fake.wait_for(lambda: len(fake.messages(chat_id)) > before, timeout=10)


async def test_an_edited_caption_is_not_a_new_photo(fake: FakeTelegram, bot: BotApplication) -> None:
    first = await fake.user_sends_photo(USER, USER, jpeg(32, 32, seed=1), caption="my street")
    await fake.wait_for_message(USER, text_containing("Got your photo"))
    replies = len(fake.messages(USER))
    await fake.user_edits_message(USER, USER, first.message_id, caption="/style waves")
    await answered(fake, USER, USER)
    assert len(fake.messages(USER)) == replies + 1  # the /status answer, nothing for the edit
    session = await store_of(bot).sessions.get(USER)
    assert session.content_path is not None
    assert session.style_path is None
    assert await store_of(bot).jobs.active_for_chat(USER) == []


async def test_groups_are_told_to_use_a_private_chat_and_photos_do_not_pair(
    fake: FakeTelegram,
    bot: BotApplication,
) -> None:
    group = fake.create_group(members=[USER, OTHER])
    await fake.user_sends_photo(group, USER, jpeg(32, 32, seed=1), caption="/style waves")
    await fake.user_sends_photo(group, OTHER, jpeg(32, 32, seed=2))
    await fake.user_sends_text(group, USER, "/start")
    reply = await fake.wait_for_message(group, text_containing("private chats"))
    assert reply.text is not None
    assert f"@{fake.bot_user['username']}" in reply.text
    assert len(fake.messages(group)) == 1
    store = store_of(bot)
    assert await store.jobs.active_for_chat(group) == []
    assert (await store.sessions.get(group)).content_path is None


async def test_channel_posts_are_ignored(fake: FakeTelegram, bot: BotApplication) -> None:
    channel = fake.create_channel()
    await fake.channel_posts(channel, photo=jpeg(32, 32, seed=1), caption="/style waves")
    await fake.channel_posts(channel, text="/start")
    await answered(fake, USER, USER)  # updates are fetched in order: the posts came before
    assert fake.messages(channel) == []
    assert await store_of(bot).jobs.active_for_chat(channel) == []


def _noisy_jpeg(side: int) -> bytes:
    rng = np.random.default_rng(3)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


async def test_a_slow_download_does_not_hold_up_other_chats(fake: FakeTelegram, bot: BotApplication) -> None:
    big = _noisy_jpeg(400)
    fake.throttle_downloads(len(big) / 6.0)  # about 6 s for every download
    slow = await fake.user_sends_document(USER, USER, big, "street.jpg", "image/jpeg")
    await fake.wait_for(lambda: fake.calls("download"), timeout=10)
    await fake.user_sends_text(OTHER, OTHER, "/help")
    await fake.wait_for_message(OTHER, text_containing("I repaint your photo"), timeout=3)
    # The other chat was answered while the first download was still streaming.
    assert not fake.messages(USER)
    await fake.wait_for_message(USER, text_containing("Got your photo"), timeout=30)
    assert slow.file_id is not None


async def test_one_chat_is_still_handled_in_order(fake: FakeTelegram, bot: BotApplication) -> None:
    """The album's first picture downloads slowly and the second at once: the first is still the content."""
    first, second = jpeg(64, 48, seed=1), jpeg(48, 64, seed=2)
    fake.throttle_downloads(len(first) / 2.0)  # about 2 s for each picture ...
    await fake.user_sends_photo(USER, USER, first, media_group_id="1")
    sent = await fake.user_sends_photo(USER, USER, second, media_group_id="1")
    assert sent.file_id is not None
    fake.throttle_downloads(10**9, file_id=sent.file_id)  # ... but the second one is instant
    job = await eventually(lambda: store_of(bot).jobs.get(1), lambda j: j is not None)
    assert job is not None
    with Image.open(job.content_path) as content:
        assert content.size == (64, 48)


async def test_uploads_per_user_are_rate_limited(fake: FakeTelegram, runner: BotRunner) -> None:
    app = await runner.start(uploads_per_minute=3, default_iterations=5000)
    for seed in range(4):
        await fake.user_sends_photo(USER, USER, jpeg(32, 32, seed=seed))
    await fake.wait_for_message(USER, text_containing("a lot of pictures at once"))
    # Someone else is not limited by it.
    await fake.user_sends_photo(OTHER, OTHER, jpeg(32, 32, seed=9))
    await fake.wait_for_message(OTHER, text_containing("Got your photo"))
    assert len(await store_of(app).jobs.active_for_chat(USER)) == 1


async def test_long_preset_names_fit_the_button_limit(fake: FakeTelegram, bot: BotApplication) -> None:
    name = "Ж" * 30  # 60 bytes of UTF-8: with "style:" over Telegram's 64
    await fake.user_sends_photo(ADMIN, ADMIN, jpeg(32, 32, seed=4), caption=f"/addstyle {name}")
    await fake.wait_for_message(ADMIN, text_containing("added"))
    await fake.user_sends_photo(USER, USER, jpeg(32, 32, seed=1))
    await fake.user_sends_text(USER, USER, "/styles")
    listing = await fake.wait_for_message(USER, text_containing(texts.presets_header))
    [button] = listing.buttons
    assert button["text"] == f"1 · {name}"
    assert len(button["callback_data"].encode()) <= CALLBACK_DATA_LIMIT
    await fake.user_presses_button(USER, USER, listing.message_id, button["callback_data"])
    job = await eventually(lambda: store_of(bot).jobs.get(1), lambda j: j is not None)
    assert job is not None
    assert job.status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.DONE, JobStatus.DELIVERED)


async def test_superscript_digits_get_the_usage_not_an_error(fake: FakeTelegram, bot: BotApplication) -> None:
    await fake.user_sends_text(USER, USER, "/options size ²")
    await fake.wait_for_message(USER, text_containing("Usage: /options"))
    await fake.user_sends_text(USER, USER, "/options")
    menu = await fake.wait_for_message(USER, text_containing("Output size"))
    await fake.user_presses_button(USER, USER, menu.message_id, "cancel:²", forged=True)
    await fake.user_presses_button(USER, USER, menu.message_id, "opt:size:²", forged=True)
    await answered(fake, USER, USER)
    assert not [m for m in fake.messages(USER) if m.text == texts.something_wrong]


async def test_cancel_stops_the_latest_picture_first(fake: FakeTelegram, runner: BotRunner) -> None:
    app = await runner.start(default_iterations=5000)
    store = store_of(app)
    for seed in (1, 3):
        await fake.user_sends_photo(USER, USER, jpeg(32, 32, seed=seed))
        await fake.user_sends_photo(USER, USER, jpeg(32, 32, seed=seed + 1))
    await eventually(lambda: store.jobs.active_for_chat(USER), lambda jobs: len(jobs) == 2)
    await fake.user_sends_photo(USER, USER, jpeg(32, 32, seed=7))
    await fake.wait_for_message(USER, text_containing("Got your photo"))

    await fake.user_sends_text(USER, USER, "/cancel")  # first: the photo waiting for its style
    await fake.wait_for_message(USER, text_containing("forgot the photo"))
    assert len(await store.jobs.active_for_chat(USER)) == 2
    await fake.user_sends_text(USER, USER, "/cancel")
    await fake.wait_for_message(USER, text_containing("1 more picture is still on the way"))
    assert [j.id for j in await store.jobs.active_for_chat(USER)] == [1]
    assert (await store.jobs.get(2)).status == JobStatus.CANCELLED  # type: ignore[union-attr]
    sent = await fake.user_sends_text(USER, USER, "/cancel all")
    reply = await fake.wait_for_message(USER, lambda m: m.message_id > sent.message_id)
    assert reply.text == "Cancelled."
    assert await store.jobs.active_for_chat(USER) == []
