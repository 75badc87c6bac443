"""End to end: the real bot through the fake Bot API server, with real engine workers on tiny weights."""

from __future__ import annotations

import asyncio
import io
import itertools

from PIL import Image

from bot.context import BotApplication
from bot.i18n import texts_in
from bot.painting import style_params
from storage import JobStatus, Store
from tests.bot.conftest import ADMIN, USER, BotRunner, delivered, eventually, jpeg, photos, text_containing
from tests.bot.fake_telegram import FakeTelegram

texts = texts_in("en")  # the fake's users speak English

JOB_TIMEOUT = 90.0


def image_size(data: bytes | None) -> tuple[int, int]:
    assert data is not None
    with Image.open(io.BytesIO(data)) as img:
        return img.size


async def add_preset(fake: FakeTelegram, name: str, chat_id: int = ADMIN) -> None:
    await fake.user_sends_photo(chat_id, ADMIN, jpeg(40, 40, seed=9), caption=f"/addstyle {name}")
    await fake.wait_for_message(chat_id, text_containing(f"Style “{name}” added"), timeout=20)


async def test_start_explains_and_commands_are_published(fake: FakeTelegram, bot: BotApplication) -> None:
    await fake.user_sends_text(USER, USER, "/start")
    reply = await fake.wait_for_message(USER, timeout=10)
    assert reply.text == texts.help(False)
    assert [c["command"] for c in fake.commands()] == [name for name, _ in texts.commands()]


async def test_content_then_style_delivers_photo_with_content_aspect(
    fake: FakeTelegram, bot: BotApplication
) -> None:
    await fake.user_sends_photo(USER, USER, jpeg(96, 48, seed=1))
    await fake.wait_for_message(USER, text_containing(texts.content_received))
    await fake.user_sends_photo(USER, USER, jpeg(40, 40, seed=2))
    queued = await fake.wait_for_message(USER, text_containing("Queued"))
    assert queued.buttons[0]["callback_data"].startswith("cancel:")
    result = await fake.wait_for(lambda: photos(fake, USER), timeout=JOB_TIMEOUT)
    # max_image_size is 64: a 96×48 photo comes back 64×32, the same 2:1 shape.
    assert image_size(result[0].data) == (64, 32)
    assert result[0].text is not None
    assert result[0].text.startswith("Here it is!")
    assert result[0].message_id == queued.message_id  # the status picture became the painting
    notice = await fake.wait_for_message(USER, lambda m: m.text == texts.ready)
    assert notice.reply_to_message_id == queued.message_id


async def test_document_images_work_and_other_files_are_refused(
    fake: FakeTelegram, bot: BotApplication
) -> None:
    await fake.user_sends_document(USER, USER, b"%PDF-1.4", "doc.pdf", "application/pdf")
    await fake.wait_for_message(USER, text_containing(texts.not_an_image))
    png = io.BytesIO()
    Image.new("RGB", (30, 20), (200, 10, 10)).save(png, format="PNG")
    await fake.user_sends_document(USER, USER, png.getvalue(), "red.png", "image/png")
    await fake.wait_for_message(USER, text_containing(texts.content_received))


async def test_preset_by_command_and_by_button(fake: FakeTelegram, bot: BotApplication) -> None:
    await add_preset(fake, "waves")
    await fake.user_sends_text(USER, USER, "/styles")
    listing = await fake.wait_for_message(USER, text_containing(texts.presets_header))
    assert [b["callback_data"] for b in listing.buttons] == ["style:waves"]

    # By command: content first, then /style NAME.
    await fake.user_sends_photo(USER, USER, jpeg(48, 48, seed=3))
    await fake.wait_for_message(USER, text_containing(texts.content_received))
    await fake.user_sends_text(USER, USER, "/style waves")
    await fake.wait_for(lambda: len(photos(fake, USER)) == 1, timeout=JOB_TIMEOUT)

    # By button: the preset first, then the content photo.
    await fake.user_presses_button(USER, USER, listing.message_id, "style:waves")
    await fake.wait_for_message(USER, text_containing("Style “waves” chosen"))
    await fake.user_sends_photo(USER, USER, jpeg(48, 32, seed=4))
    await fake.wait_for(lambda: len(photos(fake, USER)) == 2, timeout=JOB_TIMEOUT)
    assert image_size(photos(fake, USER)[1].data) == (48, 32)


async def test_caption_shortcut_and_album(fake: FakeTelegram, bot: BotApplication) -> None:
    await add_preset(fake, "dots")
    await fake.user_sends_photo(USER, USER, jpeg(40, 20, seed=5), caption="/style dots")
    await fake.wait_for(lambda: len(photos(fake, USER)) == 1, timeout=JOB_TIMEOUT)

    other = USER + 1
    await fake.user_sends_album(other, other, [jpeg(20, 40, seed=6), jpeg(40, 40, seed=7)])
    await fake.wait_for(lambda: photos(fake, other), timeout=JOB_TIMEOUT)
    assert image_size(photos(fake, other)[0].data) == (20, 40)


async def test_unknown_preset_and_stray_input_get_hints(fake: FakeTelegram, bot: BotApplication) -> None:
    await fake.user_sends_text(USER, USER, "/style ../../etc")
    await fake.wait_for_message(USER, text_containing("There's no style called"))
    await fake.user_sends_text(USER, USER, "hello?")
    await fake.wait_for_message(USER, text_containing(texts.hint))
    await fake.user_sends_sticker(USER, USER)
    await fake.wait_for(lambda: len([m for m in fake.messages(USER) if m.text == texts.hint]) == 2)
    await fake.user_sends_text(USER, USER, "/frobnicate")
    await fake.wait_for_message(USER, text_containing(texts.unknown_command))


async def test_admin_sets_iterations_and_next_job_uses_them(
    fake: FakeTelegram,
    bot: BotApplication,
    runner: BotRunner,
) -> None:
    await fake.user_sends_text(ADMIN, ADMIN, "/iterations")
    await fake.wait_for_message(ADMIN, text_containing("New pictures use 20 iterations"))
    await fake.user_sends_text(ADMIN, ADMIN, "/iterations abc")
    await fake.wait_for_message(ADMIN, text_containing("Usage: /iterations N"))
    await fake.user_sends_text(ADMIN, ADMIN, "/iterations 10000000")
    await fake.wait_for(
        lambda: len([m for m in fake.messages(ADMIN) if "Usage: /iterations" in (m.text or "")]) == 2
    )
    await fake.user_sends_text(ADMIN, ADMIN, "/iterations 7")
    await fake.wait_for_message(ADMIN, text_containing(texts.admin.iterations_set(7)))

    await fake.user_sends_photo(USER, USER, jpeg(32, 32, seed=1))
    await fake.user_sends_photo(USER, USER, jpeg(32, 32, seed=2))
    await fake.wait_for(lambda: photos(fake, USER), timeout=JOB_TIMEOUT)
    job = await delivered(bot.bot_data.store)
    assert (job.iterations, job.request.iterations) == (7, 7)

    # The setting is persisted: a restarted bot still uses 7.
    await runner.stop()
    await runner.start()
    await fake.user_sends_text(ADMIN, ADMIN, "/iterations")
    await fake.wait_for(
        lambda: len([m for m in fake.messages(ADMIN) if "use 7 iterations" in (m.text or "")]) == 2
    )


async def test_non_admin_is_refused(fake: FakeTelegram, bot: BotApplication) -> None:
    for command in ("/iterations 5", "/delstyle x", "/stats"):
        await fake.user_sends_text(USER, USER, command)
    await fake.user_sends_photo(USER, USER, jpeg(20, 20), caption="/addstyle mine")
    await fake.wait_for(lambda: len([m for m in fake.messages(USER) if m.text == texts.admin.not_admin]) == 4)
    store: Store = bot.bot_data.store
    assert (await store.settings.get()).iterations == 20
    assert await store.presets.all() == []


async def test_cancel_mid_run_with_button_and_progress_is_throttled(
    fake: FakeTelegram,
    runner: BotRunner,
) -> None:
    app = await runner.start(default_iterations=5000, progress_interval=0.5)
    await fake.user_sends_photo(USER, USER, jpeg(48, 48, seed=1))
    await fake.user_sends_photo(USER, USER, jpeg(48, 48, seed=2))
    queued = await fake.wait_for_message(USER, text_containing("Queued"))
    await fake.wait_for(
        lambda: len([v for v in fake.messages(USER)[-1].edits if "Painting" in (v.text or "")]) >= 3,
        timeout=60,
    )
    status = next(m for m in fake.messages(USER) if m.message_id == queued.message_id)
    edits = [v for v in status.edits if "Painting" in (v.text or "")]
    gaps = [b.time - a.time for a, b in itertools.pairwise(edits)]
    assert min(gaps) >= 0.45
    texts_seen = [v.text for v in status.history]
    assert all(a != b for a, b in itertools.pairwise(texts_seen))
    assert status.buttons[0]["callback_data"] == "cancel:1"

    await fake.user_presses_button(USER, USER, queued.message_id, "cancel:1")
    await fake.wait_for(
        lambda: (
            next(m for m in fake.messages(USER) if m.message_id == queued.message_id).text
            == texts.cancelled()
        ),
        timeout=20,
    )
    store: Store = app.bot_data.store
    await fake.wait_for(lambda: app.bot_data.dispatcher and not app.bot_data.dispatcher._running, timeout=20)
    job = await store.jobs.get(1)
    assert job is not None
    assert job.status == JobStatus.CANCELLED
    assert photos(fake, USER) == []


async def test_cancel_command_stops_queued_job(fake: FakeTelegram, runner: BotRunner) -> None:
    app = await runner.start(default_iterations=5000)
    await fake.user_sends_photo(USER, USER, jpeg(32, 32, seed=1))
    await fake.user_sends_photo(USER, USER, jpeg(32, 32, seed=2))
    other = USER + 1
    await fake.user_sends_photo(other, other, jpeg(32, 32, seed=1))
    await fake.user_sends_photo(other, other, jpeg(32, 32, seed=2))
    # Chats are handled side by side: the second job may be queued before the first is claimed.
    await fake.wait_for_message(other, text_containing("Queued"))
    await fake.user_sends_text(other, other, "/cancel")
    await fake.wait_for_message(other, text_containing(texts.cancelled()))
    store: Store = app.bot_data.store
    # Claimed once the worker is ready: until then /status rightly says it is queued.
    await eventually(
        lambda: store.jobs.active_for_chat(USER), lambda jobs: [j.status for j in jobs] == [JobStatus.RUNNING]
    )
    await fake.user_sends_text(USER, USER, "/status")
    await fake.wait_for_message(USER, text_containing("Painting"))
    await fake.user_sends_text(USER, USER, "/cancel")
    await fake.wait_for_message(USER, lambda m: m.text == texts.cancelled())
    assert [(await store.jobs.get(i)).status for i in (1, 2)] == [JobStatus.CANCELLED] * 2  # type: ignore[union-attr]


async def test_options_change_the_next_job(fake: FakeTelegram, bot: BotApplication) -> None:
    await fake.user_sends_text(USER, USER, "/options")
    view = await fake.wait_for_message(USER, text_containing("Output size: 64 px"))
    assert "opt:colors:on" in [b["callback_data"] for b in view.buttons]
    await fake.user_presses_button(USER, USER, view.message_id, "opt:colors:on")
    await fake.wait_for_message(USER, text_containing("Keep my photo's colours: on"))
    await fake.user_sends_text(USER, USER, "/options strength strong")
    menu = await fake.wait_for_message(USER, text_containing("Style strength: strong"))
    assert "Brush: medium" in (menu.text or "")
    await fake.user_presses_button(USER, USER, menu.message_id, "opt:brush:large")
    redrawn = await fake.wait_for_message(
        USER, lambda m: m.message_id == menu.message_id and "Brush: large" in (m.text or "")
    )
    assert texts.brush_button("large", True) in [b["text"] for b in redrawn.buttons]
    await fake.user_sends_text(USER, USER, "/options size banana")
    await fake.wait_for_message(USER, text_containing(texts.options_usage))

    await fake.user_sends_photo(USER, USER, jpeg(32, 32, seed=1))
    await fake.user_sends_photo(USER, USER, jpeg(32, 32, seed=2))
    await fake.wait_for(lambda: photos(fake, USER), timeout=JOB_TIMEOUT)
    store: Store = bot.bot_data.store
    job = await store.jobs.get(1)
    assert job is not None
    assert job.request.preserve_colors is True
    assert job.request.style_strength == 3.0
    assert style_params(job.request).style_weight == 3e6
    assert job.request.brush == "large"
    assert style_params(job.request).style_scales == (1.6,)
    assert (await store.sessions.get(USER)).options.brush == "large"  # kept for the next picture
    assert job.request.initial == "adain"  # the workers hold the decoder, so jobs start from its image
    assert job.request.optimizer == "lbfgs"  # the bot's default (DEFAULT_OPTIMIZER)
    assert job.request.margin == 16  # a mirrored frame against dark edges, cropped off


async def test_restart_mid_job_delivers_exactly_once(fake: FakeTelegram, runner: BotRunner) -> None:
    await runner.start(default_iterations=1500)
    await fake.user_sends_photo(USER, USER, jpeg(48, 48, seed=1))
    await fake.user_sends_photo(USER, USER, jpeg(48, 48, seed=2))
    await fake.wait_for(lambda: any("Painting" in (m.text or "") for m in fake.messages(USER)), timeout=60)
    await runner.stop()
    assert photos(fake, USER) == []

    app = await runner.start(default_iterations=1500)
    await fake.wait_for(lambda: photos(fake, USER), timeout=JOB_TIMEOUT)
    job = await delivered(app.bot_data.store)
    assert job.attempts == 0
    await runner.stop()
    await runner.start()
    await fake.user_sends_text(USER, USER, "/status")
    await fake.wait_for_message(USER, text_containing(texts.no_job))
    assert len(photos(fake, USER)) == 1


async def test_admin_stats_and_delstyle(fake: FakeTelegram, bot: BotApplication) -> None:
    await add_preset(fake, "gone")
    dispatcher = bot.bot_data.dispatcher
    assert dispatcher is not None
    await eventually(lambda: asyncio.sleep(0, dispatcher.pool.ready), lambda ready: ready == 1)
    await fake.user_sends_text(ADMIN, ADMIN, "/stats")
    stats = await fake.wait_for_message(ADMIN, text_containing("Jobs:"))
    lines = (stats.text or "").split("\n")
    assert "\n".join(lines[:3]) == texts.admin.stats([], None, 0, 0)
    assert lines[3] == texts.admin.painters(1, 1) == "1 of 1 painter ready"
    assert lines[4].startswith("Free disk space: ")
    await fake.user_sends_text(ADMIN, ADMIN, "/delstyle gone")
    await fake.wait_for_message(ADMIN, text_containing(texts.admin.preset_removed("gone")))
    await fake.user_sends_text(ADMIN, ADMIN, "/delstyle gone")
    await fake.wait_for_message(ADMIN, text_containing("There's no style called “gone”"))
    assert await bot.bot_data.store.presets.all() == []
