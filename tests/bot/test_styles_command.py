"""/styles through the fake Bot API: one picture of the presets with their buttons, drawn once per set."""

from __future__ import annotations

import io

from PIL import Image

from bot.context import BotApplication
from bot.i18n import texts_in
from bot.presets_sheet import layout
from storage import Store
from tests.bot.conftest import ADMIN, USER, jpeg, photos, text_containing
from tests.bot.fake_telegram import FakeTelegram, Upload

texts = texts_in("en")  # the fake's users speak English
JOB_TIMEOUT = 90.0


async def add_preset(fake: FakeTelegram, name: str, seed: int) -> None:
    await fake.user_sends_photo(ADMIN, ADMIN, jpeg(40, 40, seed=seed), caption=f"/addstyle {name}")
    await fake.wait_for_message(ADMIN, text_containing(f"Style “{name}” added"), timeout=20)


async def styles(fake: FakeTelegram, chat_id: int) -> int:
    """Send /styles and return how many sendPhoto calls the bot had made once it answered."""
    before = len(fake.messages(chat_id))
    await fake.user_sends_text(chat_id, chat_id, "/styles")
    await fake.wait_for(lambda: len(fake.messages(chat_id)) > before, timeout=20)
    return len(fake.calls("sendPhoto"))


async def test_no_presets_says_so_and_tells_an_admin_how_to_add_one(
    fake: FakeTelegram, bot: BotApplication
) -> None:
    await fake.user_sends_text(USER, USER, "/styles")
    reply = await fake.wait_for_message(USER, timeout=10)
    assert reply.text == texts.no_presets(False)
    await fake.user_sends_text(ADMIN, ADMIN, "/styles")
    reply = await fake.wait_for_message(ADMIN, timeout=10)
    assert reply.text == texts.no_presets(True)
    assert "/addstyle" in reply.text
    assert fake.calls("sendPhoto") == []


async def test_the_sheet_shows_every_preset_with_numbered_buttons(
    fake: FakeTelegram, bot: BotApplication
) -> None:
    for seed, name in enumerate(("waves", "mosaic", "ink"), start=1):
        await add_preset(fake, name, seed)
    await styles(fake, USER)
    sheet = fake.messages(USER)[-1]
    assert sheet.kind == "photo"
    assert sheet.text == texts.presets_header
    # Presets are listed by name; the buttons carry the numbers drawn on the sheet.
    assert [b["text"] for b in sheet.buttons] == ["1 · ink", "2 · mosaic", "3 · waves"]
    assert [b["callback_data"] for b in sheet.buttons] == ["style:ink", "style:mosaic", "style:waves"]
    assert sheet.data is not None
    with Image.open(io.BytesIO(sheet.data)) as picture:
        assert picture.format == "JPEG"
        assert picture.size == layout(3).size

    # A button under the sheet picks that preset: the photo sent next is painted in it.
    await fake.user_presses_button(USER, USER, sheet.message_id, "style:mosaic")
    await fake.wait_for_message(USER, text_containing(texts.style_first("mosaic")), timeout=10)
    await fake.user_sends_photo(USER, USER, jpeg(48, 48, seed=7))
    await fake.wait_for(lambda: photos(fake, USER), timeout=JOB_TIMEOUT)


async def test_the_sheet_is_drawn_once_and_again_only_when_the_presets_change(
    fake: FakeTelegram, bot: BotApplication
) -> None:
    store: Store = bot.bot_data.store
    await add_preset(fake, "waves", 1)
    await add_preset(fake, "mosaic", 2)
    await styles(fake, USER)
    first = fake.calls("sendPhoto")[-1]
    assert isinstance(first.params["photo"], Upload)
    [drawn] = list(store.files.sheets.iterdir())
    drawn_at = drawn.stat().st_mtime_ns

    # The same presets: the same file, and Telegram gets the photo it already has by its file id.
    await fake.wait_for(lambda: bot.bot_data.sheet_file_ids)  # noted once sendPhoto has answered
    await styles(fake, ADMIN)
    again = fake.calls("sendPhoto")[-1]
    assert again.params["photo"] == fake.messages(USER)[-1].file_id
    assert [p.stat().st_mtime_ns for p in store.files.sheets.iterdir()] == [drawn_at]

    # A preset removed: a new sheet is drawn and uploaded, and the old one is gone.
    await fake.user_sends_text(ADMIN, ADMIN, "/delstyle waves")
    await fake.wait_for_message(ADMIN, text_containing(texts.admin.preset_removed("waves")), timeout=10)
    await styles(fake, USER)
    latest = fake.calls("sendPhoto")[-1]
    assert isinstance(latest.params["photo"], Upload)
    [redrawn] = list(store.files.sheets.iterdir())
    assert redrawn.name != drawn.name
    assert [b["text"] for b in fake.messages(USER)[-1].buttons] == ["1 · mosaic"]
    with Image.open(io.BytesIO(latest.params["photo"].data)) as picture:
        assert picture.size == layout(1).size


async def test_a_file_id_telegram_no_longer_knows_is_uploaded_again(
    fake: FakeTelegram, bot: BotApplication
) -> None:
    await add_preset(fake, "waves", 1)
    await styles(fake, USER)
    known = await fake.wait_for(lambda: dict(bot.bot_data.sheet_file_ids))  # set once sendPhoto answered
    bot.bot_data.sheet_file_ids = {name: "no-such-file-id" for name in known}
    await styles(fake, USER)
    sends = fake.calls("sendPhoto")
    assert sends[-2].params["photo"] == "no-such-file-id"
    assert sends[-2].status == 400
    assert isinstance(sends[-1].params["photo"], Upload)
    assert fake.messages(USER)[-1].text == texts.presets_header
