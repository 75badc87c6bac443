"""Clips through the fake Bot API: GIFs (Telegram's animations), videos and video notes as the content of a
painting, refused where they break a limit (and nothing of them kept), painted and sent as animations."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from telegram import Bot, Update

from bot.context import BotApplication
from bot.i18n import texts_in
from bot.intake import inbox_item, replayed
from engine.clips import ClipError, ClipInfo, ClipLimits, ClipProblem, inspect_clip
from storage import JobStatus, Store
from tests.bot.conftest import USER, BotRunner, delivered, jpeg, text_containing
from tests.bot.fake_telegram import FakeTelegram
from tests.bot.fake_telegram.protocol import DEFAULT_TOKEN
from tests.clip_factory import write_test_clip

texts = texts_in("en")

JOB_TIMEOUT = 120.0


def clip_bytes(tmp_path: Path, name: str = "clip.mp4", **shape: object) -> bytes:
    return write_test_clip(tmp_path / name, **shape).read_bytes()  # type: ignore[arg-type]


def kept_uploads(bot: BotApplication) -> list[Path]:
    """The files intake left in uploads/, temporary ones included."""
    return sorted(bot.bot_data.store.files.uploads.iterdir())


def store_of(bot: BotApplication) -> Store:
    return bot.bot_data.store


async def test_an_animation_is_the_content_and_waits_for_its_style(
    fake: FakeTelegram, bot: BotApplication, tmp_path: Path
) -> None:
    data = clip_bytes(tmp_path, frames=12, size=(64, 48), fps=12)
    await fake.user_sends_clip(USER, USER, data, "animation", width=64, height=48, duration=1)

    reply = await fake.wait_for_message(USER, text_containing("Got your clip"))
    assert reply.text == texts.clips.received(1.0, 12, sound=False)
    session = await store_of(bot).sessions.get(USER)
    assert session.content_frames == 12
    assert session.content_size == (64, 48)
    assert session.content_path is not None
    assert session.content_path.suffix == ".mp4"
    assert session.content_path.read_bytes() == data
    assert [p.name for p in kept_uploads(bot)] == [session.content_path.name]  # no temporary file left


async def test_a_video_note_is_square_content_and_its_sound_is_mentioned(
    fake: FakeTelegram, bot: BotApplication, tmp_path: Path
) -> None:
    data = clip_bytes(tmp_path, frames=6, size=(48, 48), fps=12, audio=True)
    await fake.user_sends_clip(USER, USER, data, "video_note", width=48, height=48, duration=1)

    reply = await fake.wait_for_message(USER, text_containing("Got your clip"))
    assert reply.text == texts.clips.received(0.5, 6, sound=True)
    assert (await store_of(bot).sessions.get(USER)).content_size == (48, 48)


async def test_a_clip_too_long_by_telegrams_word_is_not_downloaded(
    fake: FakeTelegram, runner: BotRunner, tmp_path: Path
) -> None:
    bot = await runner.start(max_animation_seconds=3.0)
    data = clip_bytes(tmp_path, frames=6)
    action = await fake.user_sends_clip(USER, USER, data, "video", width=64, height=48, duration=4)

    reply = await fake.wait_for_message(USER, text_containing("s long"))
    assert reply.text == texts.clips.too_long_to_download(4, 3.0)
    assert action.file_id not in [call.params.get("file_id") for call in fake.calls("getFile")]
    assert kept_uploads(bot) == []
    assert (await store_of(bot).sessions.get(USER)).content_path is None


@pytest.mark.parametrize(
    ("name", "shape", "make", "problem"),
    [
        ("long.mp4", {"frames": 48, "fps": 12}, None, ClipProblem.TOO_LONG),  # 4 s, Telegram says 3
        ("junk.mp4", {"frames": 8}, lambda p: p.write_bytes(b"not a video " * 500), ClipProblem.UNREADABLE),
        ("jpeg.mkv", {"frames": 4, "codec": "mjpeg"}, None, ClipProblem.UNSUPPORTED),
        ("tiny.mp4", {"frames": 4, "size": (8, 8)}, None, ClipProblem.TOO_SMALL),
        ("wide.mp4", {"frames": 2, "size": (1936, 32)}, None, ClipProblem.TOO_LARGE),
    ],
)
async def test_a_clip_refused_by_its_header_leaves_nothing_behind(
    fake: FakeTelegram,
    runner: BotRunner,
    tmp_path: Path,
    name: str,
    shape: dict[str, object],
    make: object,
    problem: ClipProblem,
) -> None:
    bot = await runner.start(max_animation_seconds=3.5)
    path = write_test_clip(tmp_path / name, **shape)  # type: ignore[arg-type]
    if callable(make):
        make(path)
    with pytest.raises(ClipError) as refused:
        inspect_clip(path, ClipLimits(max_seconds=3.5))
    assert refused.value.kind == problem

    # Telegram's duration is rounded down, so the header is what finds the 4-s clip too long.
    await fake.user_sends_clip(USER, USER, path.read_bytes(), "video", width=64, height=48, duration=3)

    reply = await fake.wait_for_message(USER, lambda m: m.text == texts.clips.refused(refused.value))
    assert reply.text
    assert kept_uploads(bot) == []
    assert (await store_of(bot).sessions.get(USER)).content_path is None
    assert await store_of(bot).jobs.get(1) is None


@pytest.mark.parametrize("fault", [502, "drop"])
async def test_a_failed_clip_download_is_answered_and_leaves_nothing(
    fake: FakeTelegram,
    bot: BotApplication,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    fault: int | str,
) -> None:
    fake.fail_next("download", fault)  # type: ignore[arg-type]
    await fake.user_sends_clip(USER, USER, clip_bytes(tmp_path), "video", width=64, height=48, duration=0)

    reply = await fake.wait_for_message(USER, text_containing("couldn't fetch"))
    assert reply.text == texts.download_failed
    assert kept_uploads(bot) == []
    assert (await store_of(bot).sessions.get(USER)).content_path is None
    # The file's URL carries the token: what went wrong is logged without it.
    assert [r for r in caplog.records if "clip download failed" in r.getMessage()]
    assert not [r for r in caplog.records if fake.token in r.getMessage()]


async def test_a_clip_over_the_download_limit_is_refused_unseen(
    fake: FakeTelegram, bot: BotApplication, tmp_path: Path
) -> None:
    data = clip_bytes(tmp_path, frames=4)
    await fake.user_sends_clip(
        USER, USER, data, "animation", width=64, height=48, duration=1, file_size=21 * 1024 * 1024
    )
    reply = await fake.wait_for_message(USER, text_containing("20 MB"))
    assert reply.text == texts.too_big_to_download
    assert fake.calls("getFile") == []
    assert kept_uploads(bot) == []


async def test_a_painted_clip_comes_back_as_an_animation_in_the_status_message(
    fake: FakeTelegram, bot: BotApplication, tmp_path: Path
) -> None:
    # A GIF file of an odd size, as GIF makers produce: H.264 needs even sides, so a row and a column go.
    data = clip_bytes(tmp_path, "odd.gif", frames=4, size=(49, 33), codec="gif")
    await fake.user_sends_document(USER, USER, data, "odd.gif", "image/gif")
    await fake.wait_for_message(USER, text_containing("Got your clip"))
    await fake.user_sends_photo(USER, USER, jpeg(40, 40, seed=2))
    queued = await fake.wait_for_message(USER, text_containing("Queued"))

    job = await delivered(store_of(bot))
    assert job.result_path is not None
    assert job.result_path.suffix == ".mp4"
    shown = await fake.wait_for(
        lambda: [m for m in fake.messages(USER) if m.kind == "animation"], timeout=JOB_TIMEOUT
    )
    assert [m.message_id for m in shown] == [queued.message_id]  # the status message became the clip
    result = tmp_path / "result.mp4"
    result.write_bytes(shown[0].data or b"")
    info: ClipInfo = inspect_clip(result)
    assert (info.codec, info.container, info.frames) == ("h264", "mp4", 4)
    assert (info.width, info.height) == (48, 32)  # 49×33 less its odd row and column
    assert shown[0].text is not None
    assert shown[0].text.startswith("Here it is!")
    progress = [version.text or "" for version in shown[0].history]
    assert any("Frame " in text and " of 4" in text for text in progress), progress
    await fake.wait_for_message(USER, lambda m: m.text == texts.ready)
    assert job.status == JobStatus.DELIVERED


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("animation", {"width": 64, "height": 48, "duration": 2, "mime_type": "video/mp4"}),
        ("video", {"width": 640, "height": 360, "duration": 9, "mime_type": "video/mp4"}),
        ("video_note", {"length": 240, "duration": 5}),
    ],
)
def test_a_clip_message_comes_back_whole_from_the_inbox(kind: str, fields: dict[str, object]) -> None:
    """A clip message recorded in the inbox (a crash cut its handling short) is rebuilt as it came."""
    bot = Bot(DEFAULT_TOKEN)
    clip = {"file_id": "f1", "file_unique_id": "u1", "file_size": 4096} | fields
    message: dict[str, object] = {
        "message_id": 7,
        "date": 1750000000,
        "chat": {"id": USER, "type": "private"},
        "from": {"id": USER, "is_bot": False, "first_name": "Ann", "language_code": "ru"},
        kind: clip,
    }
    if kind == "animation":  # Telegram puts the GIF's file beside it as a document too
        message["document"] = {"file_id": "f1", "file_unique_id": "u1", "mime_type": "video/mp4"}
    update = Update.de_json({"update_id": 70, "message": message}, bot)

    item = inbox_item(update)
    again = replayed(item, bot)

    assert (item.media, item.duration) == (kind, fields["duration"])
    assert again.message is not None
    assert again.message.to_dict()[kind] == clip
    assert inbox_item(again) == item


def padded(clip: bytes, size: int) -> bytes:
    """The clip grown to `size` bytes by an MP4 `free` box after it, which readers skip: a clip as large
    as a bot may download, made in milliseconds."""
    pad = size - len(clip)
    return clip + pad.to_bytes(4, "big") + b"free" + bytes(pad - 8)


async def test_a_20_mb_clip_is_streamed_to_disk_not_held_in_memory(
    fake: FakeTelegram, bot: BotApplication, tmp_path: Path
) -> None:
    data = padded(clip_bytes(tmp_path, frames=6), 20 * 1024 * 1024 - 4096)
    # Served in chunks of 1 MB (the fake's own copies stay small too), within two seconds.
    fake.throttle_downloads(10 * 1024 * 1024)
    tracemalloc.start()
    try:
        await fake.user_sends_clip(USER, USER, data, "video", width=64, height=48, duration=0)
        await fake.wait_for_message(USER, text_containing("Got your clip"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    session = await store_of(bot).sessions.get(USER)
    assert session.content_path is not None
    assert session.content_path.read_bytes() == data  # all of it, on disk
    # Everything this process allocated meanwhile, the fake Telegram's chunks included: a bot that read
    # the download into memory would add 20 MB at least.
    assert peak < 8 * 1024 * 1024, f"{peak / 2**20:.1f} MiB allocated at the peak"
