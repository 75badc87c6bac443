"""Instant AdaIN previews: sent right after queueing, then replaced by the painting; fast mode."""

from __future__ import annotations

import io

from PIL import Image

from bot.i18n import texts_in
from storage import JobStatus, Store
from tests.bot.conftest import USER, BotRunner, eventually, jpeg, photos, text_containing
from tests.bot.fake_telegram import FakeTelegram

texts = texts_in("en")  # the fake's users speak English

JOB_TIMEOUT = 90.0


def size(data: bytes | None) -> tuple[int, int]:
    with Image.open(io.BytesIO(data or b"")) as img:
        return img.size


async def test_preview_arrives_before_the_painting_and_is_replaced_by_it(
    fake: FakeTelegram, runner: BotRunner
) -> None:
    app = await runner.start(previews=True, default_iterations=1500)
    await fake.user_sends_photo(USER, USER, jpeg(64, 32, seed=1))
    await fake.user_sends_photo(USER, USER, jpeg(40, 40, seed=2))
    preview = await fake.wait_for_message(USER, lambda m: m.text == texts.preview, timeout=60)
    assert preview.kind == "photo"
    assert size(preview.data) == (64, 32)
    store: Store = app.bot_data.store
    job = await store.jobs.get(1)
    assert job is not None
    # The preview came while the optimisation was still far from done, in the status message itself.
    assert job.status in (JobStatus.QUEUED, JobStatus.RUNNING)
    assert job.status_message_id == preview.message_id
    assert job.preview_message_id is None

    await fake.wait_for(lambda: photos(fake, USER), timeout=JOB_TIMEOUT)
    (final,) = [m for m in fake.messages(USER) if m.kind == "photo"]
    assert final.message_id == preview.message_id  # the same message, its picture swapped
    assert final.text is not None
    assert final.text.startswith("Here it is!")
    assert final.data != preview.data
    captions = [v.text or "" for v in final.history]
    assert captions[0].startswith("Queued")
    assert captions.index(texts.preview) < len(captions) - 1
    assert captions[-1] == final.text
    assert len(fake.calls("editMessageMedia")) == 2  # the preview, then the painting


async def test_fast_mode_delivers_the_preview_as_the_result(fake: FakeTelegram, runner: BotRunner) -> None:
    app = await runner.start(previews=True, default_iterations=5000)
    await fake.user_sends_text(USER, USER, "/options fast on")
    await fake.wait_for_message(USER, text_containing("Fast mode (the instant preview is the result): on"))
    await fake.user_sends_photo(USER, USER, jpeg(48, 32, seed=1))
    await fake.user_sends_photo(USER, USER, jpeg(40, 40, seed=2))
    (result,) = await fake.wait_for(lambda: photos(fake, USER), timeout=30)
    assert size(result.data) == (48, 32)
    store: Store = app.bot_data.store
    job = await eventually(
        lambda: store.jobs.get(1), lambda j: j is not None and j.status == JobStatus.DELIVERED
    )
    assert job.request.fast is True
    assert not any("Painting" in (v.text or "") for m in fake.messages(USER) for v in m.history)


async def test_fast_mode_is_refused_when_previews_are_off(fake: FakeTelegram, runner: BotRunner) -> None:
    await runner.start(previews=False)
    await fake.user_sends_text(USER, USER, "/options fast on")
    await fake.wait_for_message(USER, text_containing(texts.fast_unavailable))
    await fake.user_sends_text(USER, USER, "/options")
    view = await fake.wait_for_message(USER, text_containing("Output size"))
    assert not [b for b in view.buttons if b["callback_data"].startswith("opt:fast")]
