"""A finished picture reaches the chat exactly once: through outages, slow answers, stops and refusals."""

from __future__ import annotations

import pytest

from bot.context import BotApplication
from bot.i18n import texts_in
from storage import JobStatus, Store
from tests.bot.conftest import USER, BotRunner, delivered, eventually, jpeg, photos, pictures, text_containing
from tests.bot.fake_telegram import FakeTelegram

texts = texts_in("en")  # the fake's users speak English

JOB_TIMEOUT = 90.0
MEDIA = ("sendphoto", "senddocument", "editmessagemedia")


async def submit(fake: FakeTelegram, chat_id: int = USER) -> None:
    await fake.user_sends_photo(chat_id, chat_id, jpeg(32, 32, seed=1))
    await fake.user_sends_photo(chat_id, chat_id, jpeg(32, 32, seed=2))


def store_of(app: BotApplication) -> Store:
    return app.bot_data.store


async def test_the_result_replaces_the_status_picture(fake: FakeTelegram, bot: BotApplication) -> None:
    await submit(fake)
    job = await delivered(store_of(bot))
    [result] = pictures(fake, USER)
    assert result.message_id == job.status_message_id
    assert result.history[0].text is not None
    assert result.history[0].text.startswith("Queued")
    assert photos(fake, USER) == [result]
    assert job.result_path is not None
    assert result.data == job.result_path.read_bytes()
    # Edits make no sound, so a short reply says the painting is there.
    notice = await fake.wait_for_message(USER, lambda m: m.text == texts.ready)
    assert notice.reply_to_message_id == result.message_id


async def test_uploads_answered_8_s_late_give_exactly_one_painting(
    fake: FakeTelegram,
    bot: BotApplication,
) -> None:
    # A slow Bot API: every upload is carried out at once but answered 8 s later, past PTB's default 5 s
    # read timeout; the bot waits for the answer instead of sending again.
    for method in ("sendPhoto", "editMessageMedia", "sendDocument"):
        fake.fail_next(method, "timeout", count=10, then_apply=True, hold=8.0)
    await submit(fake)
    await fake.wait_for(lambda: fake.calls("editMessageMedia"), timeout=JOB_TIMEOUT)
    job = await delivered(store_of(bot))
    # Each answered late, once: the status picture, then the result in it.
    assert [c.description for c in fake.calls("sendPhoto")] == ["injected timeout"]
    assert [c.description for c in fake.calls("editMessageMedia")] == ["injected timeout"]
    assert [m.message_id for m in pictures(fake, USER)] == [job.status_message_id]
    assert len(photos(fake, USER)) == 1
    await fake.wait_for_message(USER, lambda m: m.text == texts.ready)


async def test_an_edit_whose_answer_is_lost_is_repeated_as_the_same_edit(
    fake: FakeTelegram,
    runner: BotRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Telegram applies the edit, but its answer comes after the client has given up on it.
    monkeypatch.setattr("bot.delivery.UPLOAD_TIMEOUT", 1.0)
    app = await runner.start()
    fake.fail_next("editMessageMedia", "timeout", then_apply=True, hold=3.0)
    await submit(fake)
    await fake.wait_for(lambda: fake.calls("editMessageMedia"), timeout=JOB_TIMEOUT)
    job = await delivered(store_of(app))
    assert [c.status for c in fake.calls("editMessageMedia")][:1] == [0]
    assert len(fake.calls("editMessageMedia")) >= 2  # tried again, as an edit of the same message
    assert len(fake.calls("sendPhoto")) == 1  # the status picture only
    assert [m.message_id for m in pictures(fake, USER)] == [job.status_message_id]
    assert len(photos(fake, USER)) == 1


async def test_a_new_message_whose_answer_is_lost_is_not_sent_again(
    fake: FakeTelegram,
    runner: BotRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("bot.delivery.UPLOAD_TIMEOUT", 1.0)
    app = await runner.start()
    # No status picture, so the painting goes as a new message; Telegram takes it but the answer is lost.
    fake.fail_next("sendPhoto", 400, description="Bad Request: IMAGE_PROCESS_FAILED")
    fake.fail_next("sendPhoto", "timeout", then_apply=True, hold=3.0)
    await submit(fake)
    job = await delivered(store_of(app))
    assert job.status_message_id is None
    assert [c.status for c in fake.calls("sendPhoto")] == [400, 0]  # sent once, never repeated
    await fake.wait_for(lambda: photos(fake, USER))
    assert len(photos(fake, USER)) == 1


async def test_a_new_message_never_sent_is_sent_again(
    fake: FakeTelegram,
    bot: BotApplication,
) -> None:
    fake.fail_next("sendPhoto", 400, description="Bad Request: IMAGE_PROCESS_FAILED")
    fake.fail_next("sendPhoto", 502)  # Telegram answered: nothing was sent
    await submit(fake)
    await delivered(store_of(bot))
    assert [c.status for c in fake.calls("sendPhoto")] == [400, 502, 200]
    assert len(photos(fake, USER)) == 1


async def test_delivery_outlasts_an_outage_and_status_says_so(
    fake: FakeTelegram, bot: BotApplication
) -> None:
    store = store_of(bot)
    fake.outage(("editmessagemedia", "senddocument"), seconds=600)
    await submit(fake)
    await fake.wait_for(lambda: len(fake.calls("editMessageMedia")) >= 2, timeout=JOB_TIMEOUT)
    await fake.user_sends_text(USER, USER, "/status")
    await fake.wait_for_message(USER, text_containing("Telegram isn't taking pictures right now"))
    assert (await store.jobs.get(1)).status == JobStatus.DONE  # type: ignore[union-attr]
    fake.end_outage()
    # Retries back off to at most 30 s: the picture arrives within that of the recovery.
    job = await eventually(
        lambda: store.jobs.get(1), lambda j: j is not None and j.status != JobStatus.DONE, 45
    )
    assert job is not None
    assert job.status == JobStatus.DELIVERED
    assert len(photos(fake, USER)) == 1
    assert len(pictures(fake, USER)) == 1


async def test_a_result_refused_as_photo_goes_as_a_file(fake: FakeTelegram, bot: BotApplication) -> None:
    fake.fail_next("editMessageMedia", 400, description="Bad Request: PHOTO_INVALID_DIMENSIONS")
    await submit(fake)
    await delivered(store_of(bot))
    [result] = photos(fake, USER)
    assert result.kind == "document"


async def test_a_result_refused_altogether_is_explained(fake: FakeTelegram, bot: BotApplication) -> None:
    fake.fail_next("editMessageMedia", 400, count=2, description="Bad Request: file is too big")
    await submit(fake)
    job = await eventually(
        lambda: store_of(bot).jobs.get(1),
        lambda j: j is not None and j.status == JobStatus.FAILED,
        JOB_TIMEOUT,
    )
    assert job is not None
    assert "file is too big" in (job.error or "").lower()
    await fake.wait_for_message(USER, text_containing("Telegram refused to take it"))
    assert photos(fake, USER) == []


async def test_without_a_status_picture_the_result_comes_as_a_new_message(
    fake: FakeTelegram,
    bot: BotApplication,
) -> None:
    fake.fail_next("sendPhoto", 400, description="Bad Request: IMAGE_PROCESS_FAILED")
    await submit(fake)
    job = await delivered(store_of(bot))
    assert job.status_message_id is None
    [result] = photos(fake, USER)
    assert result.kind == "photo"
    assert fake.calls("editMessageMedia") == []
