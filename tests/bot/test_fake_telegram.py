"""The fake Bot API server speaks the protocol as python-telegram-bot expects it."""

from __future__ import annotations

import asyncio
import datetime as dtm
import io
import os
import struct
import sys
import time
import zlib
from collections.abc import AsyncIterator

import httpx
import pytest
from PIL import Image
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    Update,
)
from telegram.error import (
    BadRequest,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

from bot.context import BotApplication
from tests.bot.fake_telegram import DEFAULT_TOKEN, FakeTelegram

CHAT = USER = 42
# A bot in another process, as the restart tests run it: answer the first update, then exit.
SUBPROCESS_BOT = """
import asyncio, os
from telegram import Bot

async def main():
    async with Bot(os.environ["TELEGRAM_BOT_TOKEN"], base_url=os.environ["TELEGRAM_API_URL"]) as bot:
        [update] = await bot.get_updates(timeout=5)
        await bot.send_message(update.effective_chat.id, "seen " + update.effective_message.text)
        await bot.get_updates(offset=update.update_id + 1)

asyncio.run(main())
"""


def png(width: int, height: int, color: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    request = HTTPXRequest(read_timeout=2)
    async with Bot(
        fake.token, base_url=fake.base_url, base_file_url=fake.base_file_url, request=request
    ) as b:
        yield b


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None
    assert update.message.text is not None
    await update.message.reply_text(update.message.text)


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go")]])
    await update.message.reply_text(f"hello {context.args}", reply_markup=keyboard)


async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer("ok")
    await query.edit_message_text(f"pressed {query.data}")


@pytest.fixture
async def app(fake: FakeTelegram) -> AsyncIterator[Application]:
    application = fake.application_builder().build()
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CallbackQueryHandler(pressed))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0, timeout=1)
        yield application
        await application.updater.stop()
        await application.stop()


async def test_get_me_returns_the_bot_user(bot: Bot) -> None:
    me = await bot.get_me()

    assert (me.id, me.is_bot, me.first_name, me.username) == (5000000001, True, "StyleBot", "style_test_bot")


async def test_send_message_is_form_encoded_and_replies_with_an_inline_keyboard(
    fake: FakeTelegram, bot: Bot
) -> None:
    asked = await fake.user_sends_text(CHAT, USER, "hi")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]])

    sent = await bot.send_message(CHAT, "hello", reply_markup=keyboard, reply_to_message_id=asked.message_id)

    assert sent.message_id == asked.message_id + 1
    assert sent.reply_to_message is not None
    assert sent.reply_to_message.text == "hi"
    assert sent.reply_markup == keyboard
    assert fake.calls("sendMessage")[0].encoding == "form"
    [message] = fake.messages(CHAT)
    assert (message.text, message.buttons, message.reply_to_message_id) == (
        "hello",
        [{"text": "A", "callback_data": "a"}],
        asked.message_id,
    )


async def test_an_identical_edit_is_refused_as_telegram_does(fake: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_message(CHAT, "10%")
    await bot.edit_message_text("20%", CHAT, sent.message_id)

    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("20%", CHAT, sent.message_id)

    [message] = fake.messages(CHAT)
    assert [v.text for v in message.history] == ["10%", "20%"]
    assert message.edits[0].time >= message.sent_at


async def test_send_photo_upload_stores_the_bytes_and_returns_photo_sizes(
    fake: FakeTelegram, bot: Bot
) -> None:
    image = png(400, 200)

    sent = await bot.send_photo(CHAT, image, caption="done")

    assert fake.calls("sendPhoto")[0].encoding == "multipart"
    assert (sent.photo[-1].width, sent.photo[-1].height) == (400, 200)
    assert sent.photo[0].width == 90
    assert len(sent.photo) == 3
    [message] = fake.messages(CHAT)
    assert (message.kind, message.text, message.data, message.width) == ("photo", "done", image, 400)
    again = await bot.send_photo(CHAT, sent.photo[-1].file_id)
    assert again.photo == sent.photo


async def test_send_document_upload_and_by_file_id(fake: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_document(CHAT, b"%PDF-1.4", filename="result.pdf")

    assert sent.document is not None
    assert (sent.document.file_name, sent.document.mime_type, sent.document.file_size) == (
        "result.pdf",
        "application/pdf",
        8,
    )
    await bot.send_document(CHAT, sent.document.file_id)
    assert [m.data for m in fake.messages(CHAT)] == [b"%PDF-1.4", b"%PDF-1.4"]


async def test_send_media_group_shares_one_group_id(fake: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_media_group(CHAT, [InputMediaPhoto(png(30, 20)), InputMediaPhoto(png(20, 30))])

    assert len({m.media_group_id for m in sent}) == 1
    assert [(m.width, m.height) for m in fake.messages(CHAT)] == [(30, 20), (20, 30)]


async def test_a_user_photo_downloads_back_byte_for_byte(fake: FakeTelegram, bot: Bot) -> None:
    image = png(1000, 500)
    sent = await fake.user_sends_photo(CHAT, USER, image, caption="/style mosaic")
    [update] = await bot.get_updates()
    assert update.message is not None
    assert update.message.caption_entities[0].type == "bot_command"
    photo = update.message.photo

    file = await bot.get_file(photo[-1].file_id)
    data = await file.download_as_bytearray()

    assert bytes(data) == image
    assert photo[-1].file_id == sent.file_id
    assert [(p.width, p.height) for p in photo] == [(90, 45), (320, 160), (800, 400), (1000, 500)]
    thumb = await (await bot.get_file(photo[0].file_id)).download_as_bytearray()
    assert Image.open(io.BytesIO(thumb)).size == (90, 45)


async def test_set_my_commands_round_trips(fake: FakeTelegram, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand("start", "Begin"), BotCommand("styles", "List styles")])

    assert [c.command for c in await bot.get_my_commands()] == ["start", "styles"]
    assert fake.commands() == [
        {"command": "start", "description": "Begin"},
        {"command": "styles", "description": "List styles"},
    ]
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Start", "Begin")])


async def test_long_polling_waits_for_an_update_and_offset_confirms(fake: FakeTelegram, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=1))
    await asyncio.sleep(0.1)
    sent = await fake.user_sends_text(CHAT, USER, "late")

    [update] = await poll

    assert update.update_id == sent.update_id
    assert update.message is not None
    assert update.message.from_user is not None
    assert update.message.from_user.language_code == "en"
    assert len(await bot.get_updates()) == 1
    assert await bot.get_updates(offset=update.update_id + 1) == ()
    assert fake.pending_updates() == []


async def test_application_echoes_text_and_handles_commands_and_buttons(
    fake: FakeTelegram,
    app: BotApplication,
) -> None:
    await fake.user_sends_text(CHAT, USER, "hello there")
    echoed = await fake.wait_for_message(CHAT, lambda m: m.text == "hello there")

    await fake.user_sends_text(CHAT, USER, "/start now")
    menu = await fake.wait_for_message(CHAT, lambda m: m.text == "hello ['now']")
    pressed = await fake.user_presses_button(CHAT, USER, menu.message_id, "go")
    await fake.wait_for(lambda: fake.callback_answer(pressed.callback_query_id or ""))

    assert echoed.message_id == 2
    assert fake.callback_answer(pressed.callback_query_id or "") == {"text": "ok", "show_alert": False}
    edited = await fake.wait_for_message(CHAT, lambda m: m.message_id == menu.message_id and bool(m.edits))
    assert (edited.text, edited.reply_markup) == ("pressed go", None)


async def test_wait_for_times_out_with_a_dump_of_recent_calls(fake: FakeTelegram, bot: Bot) -> None:
    await bot.send_message(CHAT, "something else")

    with pytest.raises(AssertionError, match="sendMessage 200"):
        await fake.wait_for(lambda: fake.messages(CHAT + 1), timeout=0.1)


async def test_a_429_raises_retry_after(
    fake: FakeTelegram, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    fake.fail_next("sendMessage", 429, retry_after=3)

    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(CHAT, "flood")

    assert caught.value.retry_after == dtm.timedelta(seconds=3)
    await bot.send_message(CHAT, "later")
    assert [c.status for c in fake.calls("sendMessage")] == [429, 200]


@pytest.mark.parametrize("status", [500, 502])
async def test_a_server_error_raises_network_error(fake: FakeTelegram, bot: Bot, status: int) -> None:
    fake.fail_next("editMessageText", status)
    sent = await bot.send_message(CHAT, "0%")

    with pytest.raises(NetworkError) as caught:
        await bot.edit_message_text("5%", CHAT, sent.message_id)

    assert not isinstance(caught.value, BadRequest)
    assert fake.messages(CHAT)[0].text == "0%"


async def test_a_dropped_connection_raises_network_error(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next("sendPhoto", "drop")

    with pytest.raises(NetworkError, match="disconnected"):
        await bot.send_photo(CHAT, png(10, 10))

    assert fake.messages(CHAT) == []
    await bot.send_photo(CHAT, png(10, 10))
    assert len(fake.messages(CHAT)) == 1


async def test_a_held_request_times_out_and_can_still_be_applied(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next("sendMessage", "timeout", hold=0.5, then_apply=True)

    with pytest.raises(TimedOut):
        await bot.send_message(CHAT, "slow", read_timeout=0.2)

    await fake.wait_for(lambda: fake.messages(CHAT), timeout=2)
    assert fake.messages(CHAT)[0].text == "slow"


async def test_a_blocked_user_is_forbidden_only_in_their_chat(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next("sendMessage", 403, chat_id=CHAT)
    fake.block(CHAT + 1)

    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(CHAT, "result")
    with pytest.raises(Forbidden):
        await bot.send_message(CHAT + 1, "result")

    await bot.send_message(CHAT + 2, "fine")
    await bot.send_message(CHAT, "fine now")


async def test_get_file_refuses_files_over_20_mb(fake: FakeTelegram, bot: Bot) -> None:
    sent = await fake.user_sends_document(CHAT, USER, png(8, 8), "big.png", "image/png", file_size=25_000_000)
    [update] = await bot.get_updates()
    assert update.message is not None
    assert update.message.document is not None
    assert update.message.document.file_size == 25_000_000

    with pytest.raises(BadRequest, match="File is too big"):
        await bot.get_file(sent.file_id or "")


async def test_unknown_method_and_wrong_token(fake: FakeTelegram, bot: Bot) -> None:
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("sendTelepathy")
    stranger = Bot("1:wrong", base_url=fake.base_url)
    try:
        with pytest.raises(InvalidToken, match="rejected"):
            await stranger.initialize()
    finally:
        await stranger.shutdown()
    assert fake.calls("getMe")[-1].status == 401


async def test_json_bodies_are_accepted(fake: FakeTelegram) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{fake.base_url}{DEFAULT_TOKEN}/sendMessage", json={"chat_id": 7, "text": "x"}
        )
        missing = await client.post(f"{fake.base_url}{DEFAULT_TOKEN}/fooBar", json={})

    assert response.json()["result"]["chat"] == {"id": 7, "type": "private", "first_name": "User7"}
    assert (missing.status_code, missing.json()) == (
        404,
        {"ok": False, "error_code": 404, "description": "Not Found"},
    )
    assert fake.calls("sendMessage")[0].encoding == "json"


async def test_other_user_messages_parse(fake: FakeTelegram, bot: Bot) -> None:
    await fake.user_sends_sticker(CHAT, USER)
    await fake.user_sends_voice(CHAT, USER)
    await fake.user_sends_location(CHAT, USER)
    await fake.user_sends_album(CHAT, USER, [png(20, 10), png(10, 20)])

    updates = await bot.get_updates()

    sticker, voice, location, first, second = [u.message for u in updates if u.message is not None]
    assert sticker.sticker is not None
    assert voice.voice is not None
    assert location.location is not None
    assert (location.location.latitude, location.location.longitude) == (52.52, 13.405)
    assert first.media_group_id is not None
    assert first.media_group_id == second.media_group_id
    assert [p.photo[-1].width for p in (first, second)] == [20, 10]


async def test_runs_in_a_thread_with_its_own_loop() -> None:
    with FakeTelegram().run_in_thread() as fake:
        async with Bot(fake.token, base_url=fake.base_url) as bot:
            poll = asyncio.create_task(bot.get_updates(timeout=2))
            await asyncio.sleep(0.1)
            await fake.user_sends_text(CHAT, USER, "/start")

            [update] = await poll

        assert update.message is not None
        assert update.message.text == "/start"


async def test_serves_a_bot_in_a_subprocess_from_its_thread() -> None:
    with FakeTelegram().run_in_thread() as fake:
        await fake.user_sends_text(CHAT, USER, "hello")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", SUBPROCESS_BOT, env=os.environ | fake.env()
        )

        assert await asyncio.wait_for(process.wait(), 20) == 0
        assert [m.text for m in fake.messages(CHAT)] == ["seen hello"]
        assert fake.pending_updates() == []


async def test_undecodable_user_photos_keep_their_header_dimensions(fake: FakeTelegram, bot: Bot) -> None:
    noise = io.BytesIO()
    Image.effect_noise((900, 300), 50).save(noise, "JPEG")
    truncated = noise.getvalue()[: len(noise.getvalue()) // 2]
    bomb = b"\x89PNG\r\n\x1a\n" + b"".join(
        png_chunk(kind, data)
        for kind, data in [
            (b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)),
            (b"IDAT", zlib.compress(bytes(64))),
            (b"IEND", b""),
        ]
    )

    await fake.user_sends_photo(CHAT, USER, truncated)
    await fake.user_sends_photo(CHAT, USER, bomb)

    first, second = [u.message.photo for u in await bot.get_updates() if u.message is not None]
    assert [(p.width, p.height) for p in first] == [(900, 300)]
    assert [(p.width, p.height) for p in second] == [(30000, 30000)]
    with pytest.raises(ValueError, match="not an image"):
        await fake.user_sends_photo(CHAT, USER, b"%PDF-1.4")


async def test_set_file_size_makes_an_earlier_photo_too_big(fake: FakeTelegram, bot: Bot) -> None:
    sent = await fake.user_sends_photo(CHAT, USER, png(50, 40))
    fake.set_file_size(sent.file_id or "", 21 * 1024 * 1024)

    [update] = await bot.get_updates()

    assert update.message is not None
    assert update.message.photo[-1].file_size == 21 * 1024 * 1024
    with pytest.raises(BadRequest, match="File is too big"):
        await bot.get_file(update.message.photo[-1].file_id)


async def test_edit_message_media_replaces_the_photo(fake: FakeTelegram, bot: Bot) -> None:
    first = await bot.send_photo(CHAT, photo=png(40, 20), caption="preview")
    await bot.edit_message_media(
        media=InputMediaPhoto(png(60, 30), caption="final"), chat_id=CHAT, message_id=first.message_id
    )
    (record,) = [m for m in fake.messages(CHAT) if m.message_id == first.message_id]
    assert (record.kind, record.text, record.width, record.height) == ("photo", "final", 60, 30)
    assert [v.text for v in record.history] == ["preview", "final"]


async def test_a_member_posts_in_a_supergroup_and_the_bot_replies_there(fake: FakeTelegram, bot: Bot) -> None:
    group = fake.create_group("Artists", [USER, USER + 1])
    sent = await fake.user_sends_photo(group, USER + 1, png(40, 30), caption="mosaic")

    [update] = await bot.get_updates()
    message = update.message
    assert message is not None
    reply = await bot.send_message(group, "queued", reply_to_message_id=message.message_id)

    assert (message.chat.id, message.chat.type, message.chat.title) == (group, "supergroup", "Artists")
    assert str(group).startswith("-100")
    assert message.from_user is not None
    assert message.from_user.id == USER + 1
    assert message.photo[-1].file_id == sent.file_id
    assert (reply.chat.id, reply.reply_to_message.message_id if reply.reply_to_message else None) == (
        group,
        sent.message_id,
    )
    assert [(m.chat_id, m.text) for m in fake.messages(group)] == [(group, "queued")]
    assert fake.messages(USER + 1) == []
    assert [m.get("text", m.get("caption")) for m in fake.chat_history(group)] == ["mosaic", "queued"]


async def test_a_basic_group_and_its_member_checks(fake: FakeTelegram, bot: Bot) -> None:
    group = fake.create_group("Family", [USER], kind="group")

    with pytest.raises(ValueError, match="not a member"):
        await fake.user_sends_text(group, USER + 1, "/start")
    fake.add_member(group, USER + 1)
    await fake.user_sends_text(group, USER + 1, "/start")

    [update] = await bot.get_updates()
    assert update.effective_chat is not None
    assert (update.effective_chat.type, update.effective_chat.title) == ("group", "Family")
    assert -(10**12) < group < 0
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(-12345, "nobody here")
    fake.block(group)
    with pytest.raises(Forbidden, match="kicked from the group chat"):
        await bot.send_message(group, "hello?")


async def test_privacy_mode_shows_the_bot_only_commands_replies_and_media(
    fake: FakeTelegram, bot: Bot
) -> None:
    group = fake.create_group("Chatty", [USER])
    chatter = await fake.user_sends_text(group, USER, "nice weather")
    command = await fake.user_sends_text(group, USER, "/styles")
    own = await fake.user_sends_text(group, USER, "/styles@style_test_bot")
    other = await fake.user_sends_text(group, USER, "/styles@some_other_bot")
    document = await fake.user_sends_document(group, USER, b"%PDF-1.4", "a.pdf", "application/pdf")
    bot_message = await bot.send_message(group, "pick a style")
    reply = await fake.user_sends_text(group, USER, "mosaic", reply_to=bot_message.message_id)
    reply_to_user = await fake.user_sends_text(group, USER, "me too", reply_to=chatter.message_id)

    seen = [u.message.message_id for u in await bot.get_updates() if u.message is not None]

    assert seen == [command.message_id, own.message_id, document.message_id, reply.message_id]
    assert [a.delivered for a in (chatter, other, reply_to_user)] == [False, False, False]
    assert chatter.update_id == 0
    assert len(fake.chat_history(group)) == 8
    assert (await bot.get_me()).can_read_all_group_messages is False
    fake.privacy_mode = False
    assert (await fake.user_sends_text(group, USER, "now you hear me")).delivered
    assert (await bot.get_me()).can_read_all_group_messages is True


async def test_an_edited_message_keeps_its_id_and_photo(fake: FakeTelegram, bot: Bot) -> None:
    photo = await fake.user_sends_photo(CHAT, USER, png(60, 40), caption="/style wave")
    text = await fake.user_sends_text(CHAT, USER, "helo")

    edit = await fake.user_edits_message(CHAT, USER, photo.message_id, caption="/style mosaic")
    await fake.user_edits_message(CHAT, USER, text.message_id, text="hello")

    first, _, edited_photo, edited_text = await bot.get_updates()
    assert first.message is not None
    assert first.message.caption == "/style wave"
    assert edited_photo.message is None
    message = edited_photo.edited_message
    assert message is not None
    assert (message.message_id, message.caption, message.edit_date is not None) == (
        photo.message_id,
        "/style mosaic",
        True,
    )
    assert message.caption_entities[0].type == "bot_command"
    assert message.photo[-1].file_id == photo.file_id == edit.file_id
    assert edited_text.edited_message is not None
    assert edited_text.edited_message.text == "hello"
    with pytest.raises(ValueError, match="has no message"):
        await fake.user_edits_message(CHAT, USER + 1, text.message_id, text="not mine")
    with pytest.raises(ValueError, match="has text"):
        await fake.user_edits_message(CHAT, USER, text.message_id, caption="a caption")


async def test_an_edit_in_a_group_is_filtered_like_a_new_message(fake: FakeTelegram, bot: Bot) -> None:
    group = fake.create_group("Edits", [USER])
    typo = await fake.user_sends_text(group, USER, "/stlye")

    hidden = await fake.user_edits_message(group, USER, typo.message_id, text="oops, never mind")
    shown = await fake.user_edits_message(group, USER, typo.message_id, text="/style")

    updates = await bot.get_updates()
    assert [u.update_id for u in updates] == [typo.update_id, shown.update_id]
    assert not hidden.delivered
    assert updates[1].edited_message is not None
    assert updates[1].edited_message.chat.id == group


async def test_channel_posts_have_no_sender_user(fake: FakeTelegram, bot: Bot) -> None:
    channel = fake.create_channel("News", username="news_channel")
    await fake.channel_posts(channel, "first post", author_signature="Ed")
    pictured = await fake.channel_posts(channel, photo=png(50, 50), caption="look", sender_chat=False)

    text_update, photo_update = await bot.get_updates()
    post = text_update.channel_post
    assert post is not None
    assert text_update.message is None
    assert (post.chat.type, post.chat.username, post.text, post.author_signature) == (
        "channel",
        "news_channel",
        "first post",
        "Ed",
    )
    assert post.from_user is None
    assert post.sender_chat is not None
    assert post.sender_chat.id == channel
    photo_post = photo_update.channel_post
    assert photo_post is not None
    assert (photo_post.sender_chat, photo_post.caption) == (None, "look")
    assert photo_post.photo[-1].file_id == pictured.file_id
    answer = await bot.send_message(channel, "from the bot")
    assert (answer.from_user, answer.sender_chat.id if answer.sender_chat else None) == (None, channel)
    with pytest.raises(ValueError, match="no channel"):
        await fake.channel_posts(-5, "where?")


def keyboard(data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton("ok", callback_data="ok"), InlineKeyboardButton("x", callback_data=data)]]
    )


async def test_callback_data_over_64_bytes_is_refused_everywhere(fake: FakeTelegram, bot: Bot) -> None:
    too_long = "é" * 33  # 33 characters, 66 bytes of UTF-8
    sent = await bot.send_message(CHAT, "menu", reply_markup=keyboard("s" * 64))
    photo = await bot.send_photo(CHAT, png(10, 10))
    attempts = [
        bot.send_message(CHAT, "menu", reply_markup=keyboard(too_long)),
        bot.send_photo(CHAT, png(10, 10), reply_markup=keyboard(too_long)),
        bot.send_document(CHAT, b"%PDF-1.4", filename="a.pdf", reply_markup=keyboard(too_long)),
        bot.edit_message_text("menu 2", CHAT, sent.message_id, reply_markup=keyboard(too_long)),
        bot.edit_message_reply_markup(CHAT, sent.message_id, reply_markup=keyboard(too_long)),
        bot.edit_message_caption(CHAT, photo.message_id, caption="c", reply_markup=keyboard(too_long)),
        bot.edit_message_media(
            InputMediaPhoto(png(20, 20)), CHAT, photo.message_id, reply_markup=keyboard(too_long)
        ),
    ]

    for attempt in attempts:
        with pytest.raises(BadRequest, match="Button_data_invalid"):
            await attempt

    assert [(m.text, len(m.history)) for m in fake.messages(CHAT)] == [("menu", 1), (None, 1)]
    assert len([c for c in fake.calls() if c.description == "Bad Request: BUTTON_DATA_INVALID"]) == 7


async def test_an_outage_answers_bad_gateway_until_it_is_over(fake: FakeTelegram, bot: Bot) -> None:
    image = await fake.user_sends_photo(CHAT, USER, png(30, 30))
    file = await bot.get_file(image.file_id or "")
    fake.outage(["sendmessage", "download"], 1.0)

    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(CHAT, "during")
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await file.download_as_bytearray()
    await bot.get_me()
    await asyncio.sleep(1.1)
    await bot.send_message(CHAT, "after")

    assert [(c.status, c.description) for c in fake.calls("sendMessage")] == [(502, "outage"), (200, "")]
    assert bytes(await file.download_as_bytearray()) == fake.file_bytes(image.file_id or "")
    assert [m.text for m in fake.messages(CHAT)] == ["after"]


async def test_an_outage_can_drop_connections_or_flood_and_end_early(
    fake: FakeTelegram, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    fake.outage("*", 60, "drop")
    with pytest.raises(NetworkError):
        await bot.get_me()
    fake.end_outage()
    await bot.get_me()
    fake.outage("sendphoto", 30, 429)
    fake.fail_next("sendPhoto", 500)

    with pytest.raises(RetryAfter) as caught:
        await bot.send_photo(CHAT, png(10, 10))
    fake.end_outage("sendphoto")
    with pytest.raises(NetworkError, match="Internal Server Error"):
        await bot.send_photo(CHAT, png(10, 10))

    retry_after = caught.value.retry_after
    assert isinstance(retry_after, dtm.timedelta)
    assert dtm.timedelta(seconds=25) <= retry_after <= dtm.timedelta(seconds=30)
    assert [(c.method, c.status) for c in fake.calls()[1:]] == [
        ("getMe", 0),
        ("getMe", 200),
        ("sendPhoto", 429),
        ("sendPhoto", 500),
    ]
    assert fake.messages(CHAT) == []


async def test_a_timed_out_photo_upload_is_applied_once(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next("sendPhoto", "timeout", hold=1.5, then_apply=True)

    with pytest.raises(TimedOut):
        await bot.send_photo(CHAT, png(80, 60), caption="result", read_timeout=0.5)

    [message] = await fake.wait_for(lambda: fake.messages(CHAT), timeout=5)
    assert (message.kind, message.text, message.data, message.width) == ("photo", "result", png(80, 60), 80)
    assert fake.calls("sendPhoto")[0].encoding == "multipart"
    assert len(fake.messages(CHAT)) == len(fake.calls("sendPhoto")) == 1


async def test_a_timed_out_document_upload_is_applied_once(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next("sendDocument", "timeout", hold=1.5, then_apply=True)

    with pytest.raises(TimedOut):
        await bot.send_document(CHAT, b"%PDF-1.4 result", filename="result.pdf", read_timeout=0.5)

    [message] = await fake.wait_for(lambda: fake.messages(CHAT), timeout=5)
    assert (message.kind, message.file_name, message.data) == ("document", "result.pdf", b"%PDF-1.4 result")
    assert fake.calls("sendDocument")[0].encoding == "multipart"
    assert len(fake.messages(CHAT)) == len(fake.calls("sendDocument")) == 1


async def test_a_timed_out_media_edit_is_applied_once(fake: FakeTelegram, bot: Bot) -> None:
    preview = await bot.send_photo(CHAT, png(40, 30), caption="preview")
    fake.fail_next("editMessageMedia", "timeout", hold=1.5, then_apply=True)

    with pytest.raises(TimedOut):
        await bot.edit_message_media(
            InputMediaDocument(b"%PDF-1.4 final", filename="final.pdf", caption="final"),
            CHAT,
            preview.message_id,
            read_timeout=0.5,
        )

    [message] = await fake.wait_for(lambda: [m for m in fake.messages(CHAT) if m.edits], timeout=5)
    assert (message.message_id, message.kind, message.text, message.data) == (
        preview.message_id,
        "document",
        "final",
        b"%PDF-1.4 final",
    )
    assert fake.calls("editMessageMedia")[0].encoding == "multipart"
    assert len(fake.messages(CHAT)) == len(message.edits) == 1


async def test_a_throttled_download_is_slow_without_slowing_other_requests(
    fake: FakeTelegram, bot: Bot
) -> None:
    slow_bytes, fast_bytes = os.urandom(45_000), os.urandom(45_000)
    slow = await fake.user_sends_document(CHAT, USER, slow_bytes, "slow.bin", "application/octet-stream")
    fast = await fake.user_sends_document(CHAT, USER, fast_bytes, "fast.bin", "application/octet-stream")
    slow_file, fast_file = await bot.get_file(slow.file_id or ""), await bot.get_file(fast.file_id or "")
    fake.throttle_downloads(15_000, slow.file_id)  # 3 s for 45 kB

    started = time.monotonic()
    download = asyncio.create_task(slow_file.download_as_bytearray())
    await asyncio.sleep(0.3)
    me = await bot.get_me()
    fast_data = await fast_file.download_as_bytearray()
    others_done = time.monotonic() - started
    still_downloading = not download.done()
    slow_data = await download
    slow_done = time.monotonic() - started

    assert (me.id, bytes(fast_data), bytes(slow_data)) == (fake.bot_user["id"], fast_bytes, slow_bytes)
    assert still_downloading, f"getMe and the other download took {others_done:.1f} s"
    assert 2.9 <= slow_done < 20
    assert [c.description for c in fake.calls("download")] == ["throttled to 15000 B/s", ""]


async def test_flood_control_refuses_one_chat_beyond_its_rate_until_retry_after(
    fake: FakeTelegram, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    fake.flood_limit(CHAT, per_second=0.1, burst=2, retry_after=2)
    await bot.send_message(CHAT, "one")
    await bot.send_message(CHAT, "two")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(CHAT, "three")
    assert caught.value.retry_after == dtm.timedelta(seconds=2)
    await bot.send_message(CHAT + 1, "another chat")  # not limited
    with pytest.raises(RetryAfter):  # every call for the chat, edits too, until retry_after has passed
        await bot.edit_message_text("one!", CHAT, 1)
    assert fake.flood_refusals(CHAT) == 2
    fake.flood_limit(CHAT, None)
    await bot.send_message(CHAT, "three")
    assert [m.text for m in fake.messages(CHAT)] == ["one", "two", "three"]
