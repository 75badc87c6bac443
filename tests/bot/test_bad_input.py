"""Bad input gets a short, friendly reply, changes nothing, and the chat stays usable."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from bot.config import Config
from bot.context import BotApplication
from bot.i18n import texts_in
from engine.clips import ClipError, ClipProblem
from storage import Store
from tests.bot.conftest import ADMIN, USER, BotRunner, jpeg, photos, text_containing
from tests.bot.fake_telegram import FakeTelegram

texts = texts_in("en")  # the fake's users speak English
NOT_A_CLIP = ClipError(ClipProblem.UNSUPPORTED, "no demuxer of ours takes it")

JOB_TIMEOUT = 90.0


def encoded(img: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size (a decompression bomb's calling card)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    body = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return b"\x89PNG\r\n\x1a\n" + body + b"\x00\x00\x00\x00IEND\xaeB`\x82"


def animated_webp() -> bytes:
    frames = [Image.new("RGB", (40, 40), color) for color in ((255, 0, 0), (0, 0, 255))]
    return encoded(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100, loop=0)


def replies(fake: FakeTelegram) -> list[str]:
    return [m.text or "" for m in fake.messages(USER) if m.kind == "text"]


async def count_replies(fake: FakeTelegram, n: int) -> list[str]:
    return await fake.wait_for(lambda: replies(fake) if len(replies(fake)) >= n else None, timeout=20)


@pytest.mark.parametrize(
    ("name", "mime", "data", "expected"),
    [
        ("report.pdf", "application/pdf", b"%PDF-1.4\n%%EOF", texts.not_an_image),
        ("notes.txt", "text/plain", b"hello", texts.not_an_image),
        (
            "archive.jpg",
            "image/jpeg",
            b"PK\x03\x04" + b"\x00" * 200,
            "I can't use that picture: it is not an image",
        ),
        ("empty.png", "image/png", b"", "I can't use that picture"),
        ("cut.jpg", "image/jpeg", jpeg(64, 64)[:300], "I can't use that picture: it is damaged"),
        ("cut.png", "image/png", encoded(Image.new("RGB", (64, 64)), "PNG")[:60], "it is damaged"),
        ("dot.png", "image/png", encoded(Image.new("RGB", (1, 1)), "PNG"), "it is too small (1×1 pixels"),
        ("strip.png", "image/png", encoded(Image.new("RGB", (900, 20)), "PNG"), "it is too long and thin"),
        ("bomb.png", "image/png", png_header_claiming(30000, 30000), "it is too large (over 50 megapixels)"),
        # A GIF file is a clip (tests/bot/test_animations.py); junk that FFmpeg takes for no format of
        # ours is refused as a clip.
        ("anim.gif", "image/gif", b"GIF89a" + b"\x00" * 200, texts.clips.refused(NOT_A_CLIP)),
    ],
)
async def test_bad_documents_are_refused_and_change_nothing(
    fake: FakeTelegram,
    bot: BotApplication,
    name: str,
    mime: str,
    data: bytes,
    expected: str,
) -> None:
    await fake.user_sends_document(USER, USER, data, name, mime)
    (reply,) = await count_replies(fake, 1)
    assert reply.startswith(expected) or expected in reply
    store: Store = bot.bot_data.store
    session = await store.sessions.get(USER)
    assert (session.content_path, session.style_path) == (None, None)
    # The chat is still usable: a good photo is taken as the content.
    await fake.user_sends_photo(USER, USER, jpeg(32, 32))
    await fake.wait_for_message(USER, text_containing(texts.content_received))


async def test_bomb_is_refused_before_decoding(fake: FakeTelegram, bot: BotApplication) -> None:
    await fake.user_sends_photo(USER, USER, png_header_claiming(30000, 30000), width=30000, height=30000)
    (reply,) = await count_replies(fake, 1)
    assert "too large" in reply


async def test_files_over_20_mb_are_not_downloaded(fake: FakeTelegram, bot: BotApplication) -> None:
    await fake.user_sends_photo(USER, USER, jpeg(32, 32), file_size=25 * 1024 * 1024)
    await fake.user_sends_document(
        USER, USER, jpeg(32, 32), "big.jpg", "image/jpeg", file_size=21 * 1024 * 1024
    )
    assert await count_replies(fake, 2) == [texts.too_big_to_download] * 2
    assert fake.calls("getFile") == []


async def test_odd_images_are_converted(fake: FakeTelegram, bot: BotApplication) -> None:
    await fake.user_sends_document(USER, USER, animated_webp(), "anim.webp", "image/webp")
    await fake.wait_for_message(USER, text_containing(texts.first_frame))
    await fake.wait_for_message(USER, text_containing(texts.content_received))
    cmyk = encoded(Image.new("CMYK", (40, 30), (0, 200, 200, 0)), "JPEG")
    await fake.user_sends_document(USER, USER, cmyk, "print.jpg", "image/jpeg")
    await fake.wait_for(lambda: photos(fake, USER), timeout=JOB_TIMEOUT)

    other = USER + 1
    rgba = encoded(Image.new("RGBA", (40, 20), (0, 0, 0, 0)), "PNG")
    await fake.user_sends_document(other, other, rgba, "alpha.png", "image/png")
    gray16 = encoded(Image.new("I;16", (30, 30), 40000), "PNG")
    await fake.user_sends_document(other, other, gray16, "deep.png", "image/png")
    await fake.wait_for(lambda: photos(fake, other), timeout=JOB_TIMEOUT)
    with Image.open(io.BytesIO(photos(fake, other)[0].data or b"")) as result:
        assert result.size == (40, 20)


async def test_exif_rotated_photo_comes_back_upright(fake: FakeTelegram, bot: BotApplication) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    sideways = encoded(Image.new("RGB", (48, 24), (90, 120, 30)), "JPEG", exif=exif)
    await fake.user_sends_document(USER, USER, sideways, "phone.jpg", "image/jpeg")
    await fake.user_sends_photo(USER, USER, jpeg(32, 32, seed=3))
    await fake.wait_for(lambda: photos(fake, USER), timeout=JOB_TIMEOUT)
    with Image.open(io.BytesIO(photos(fake, USER)[0].data or b"")) as result:
        assert result.size == (24, 48)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/style ../../etc", "There's no style called “../../etc”"),
        ("/style " + "x" * 300, "There's no style called “" + "x" * 40 + "”"),
        ("/style \u202eevil\u0000", "There's no style called"),
        ("/style", texts.style_usage),
        ("/options size", texts.options_usage),
        ("/options colors maybe", texts.options_usage),
    ],
)
async def test_garbage_arguments_get_usage(
    fake: FakeTelegram,
    bot: BotApplication,
    command: str,
    expected: str,
) -> None:
    await fake.user_sends_text(USER, USER, command)
    (reply,) = await count_replies(fake, 1)
    assert reply.startswith(expected)


async def test_stray_messages_get_a_hint(fake: FakeTelegram, bot: BotApplication) -> None:
    await fake.user_sends_voice(USER, USER)
    await fake.user_sends_location(USER, USER)
    await fake.user_sends_sticker(USER, USER)
    await fake.user_sends_text(USER, USER, "paint me like one of your French girls")
    assert await count_replies(fake, 4) == [texts.hint] * 4


async def test_a_flooding_user_is_capped(fake: FakeTelegram, config: Config, runner: BotRunner) -> None:
    app = await runner.start(default_iterations=5000, max_queued_per_user=2)
    for i in range(3):
        await fake.user_sends_photo(USER, USER, jpeg(32, 32, seed=i))
        await fake.user_sends_photo(USER, USER, jpeg(32, 32, seed=10 + i))
    await fake.wait_for_message(USER, text_containing("You already have 2 pictures on the way"))
    store: Store = app.bot_data.store
    assert [j.id for j in await store.jobs.active_for_chat(USER)] == [1, 2]
    # Refused photos are not kept: the next photo will be a new picture's content, not a stale pair's style.
    session = await store.sessions.get(USER)
    assert (session.content_path, session.style_path) == (None, None)
    # Another user is not affected by the first one's cap.
    other = USER + 1
    await fake.user_sends_photo(other, other, jpeg(32, 32))
    await fake.user_sends_photo(other, other, jpeg(32, 32, seed=5))
    await fake.wait_for_message(other, text_containing("Queued"))


@pytest.mark.parametrize("name", ["../../evil", "a/b", ".hidden", "x" * 33, "bad\u202ename"])
async def test_preset_names_never_become_paths(fake: FakeTelegram, bot: BotApplication, name: str) -> None:
    await fake.user_sends_photo(ADMIN, ADMIN, jpeg(32, 32), caption=f"/addstyle {name}")
    reply = await fake.wait_for_message(ADMIN, text_containing("That name won't do"))
    assert reply.text is not None
    store: Store = bot.bot_data.store
    assert await store.presets.all() == []
    assert list(store.files.presets.iterdir()) == []
