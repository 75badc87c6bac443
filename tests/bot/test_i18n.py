"""Languages: every text in every language with the same placeholders, and each user answered in theirs."""

from __future__ import annotations

import string
from dataclasses import replace
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

import bot.texts
from bot.context import BotApplication
from bot.i18n import ENGLISH, LANGUAGES, language_of, texts_for, texts_in
from bot.translation import LOCALE_DIR, SOURCES, Text, catalogue_path
from engine.images import ImageProblem
from engine.workers.jobs import Failure, Outcome
from storage import Store
from tests.bot.conftest import USER, delivered, jpeg, photos
from tests.bot.fake_telegram import FakeTelegram

TRANSLATED = [language for language in LANGUAGES if language != ENGLISH]
KEYWORDS = {"_": None, "ngettext": (1, 2), "Text": None}
JOB_TIMEOUT = 90.0


def source_messages() -> set[tuple[str, ...]]:
    """The message ids in the sources, as gettext extraction finds them ((id,) or (singular, plural))."""
    root = Path(bot.texts.__file__).parents[1]
    found = [m for source in SOURCES for m in extract_from_file("python", root / source, keywords=KEYWORDS)]
    return {tuple([text] if isinstance(text, str) else list(text)) for _, text, _, _ in found}


def catalogue(language: str) -> Catalog:
    with catalogue_path(language).open("rb") as file:
        return read_po(file, locale=language)


def key(message: Message) -> tuple[str, ...]:
    return tuple([message.id] if isinstance(message.id, str) else list(message.id))


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


@pytest.mark.parametrize(
    ("code", "language"),
    [
        ("ru", "ru"),
        ("ru-RU", "ru"),
        ("RU", "ru"),
        ("zh", "zh"),
        ("zh-hans", "zh"),
        ("zh-CN", "zh"),
        ("zh_Hans", "zh"),
        ("zh-hant", ENGLISH),
        ("zh-tw", ENGLISH),
        ("en", ENGLISH),
        ("de", ENGLISH),
        ("rue", ENGLISH),
        ("", ENGLISH),
        (None, ENGLISH),
    ],
)
def test_language_follows_telegrams_language_code(code: str | None, language: str) -> None:
    assert language_of(code) == language
    assert texts_for(code).language == language


def test_the_template_lists_exactly_the_texts_in_the_source() -> None:
    with (LOCALE_DIR / "bot.pot").open("rb") as file:
        template = read_po(file)
    assert {key(m) for m in template if m.id} == source_messages()


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_text_is_translated_with_the_same_placeholders(language: str) -> None:
    messages = {key(m): m for m in catalogue(language) if m.id}
    expected = source_messages()
    assert sorted(expected - messages.keys()) == [], "texts missing from the catalogue: run pybabel update"
    assert sorted(messages.keys() - expected) == [], "texts no longer in the source: run pybabel update"
    for ids, message in messages.items():
        assert not message.fuzzy, ids
        placeholders = {frozenset(fields(text)) for text in ids}
        assert len(placeholders) == 1, f"singular and plural differ in placeholders: {ids}"
        translations = [message.string] if isinstance(message.string, str) else list(message.string)
        assert len(translations) == catalogue(language).num_plurals or isinstance(message.string, str)
        for translation in translations:
            assert translation.strip(), f"{language}: no translation for {ids[0]!r}"
            assert fields(translation) == set(next(iter(placeholders))), (ids[0], translation)


def sample_calls(texts: bot.texts.Texts) -> list[str]:
    """Every text the bot can send, each way it can be composed."""
    done = Outcome(job_id="1", status="done")
    out: list[str] = [
        texts.help(False),
        texts.help(True),
        *(description for _, description in texts.commands()),
        texts.no_presets(False),
        texts.no_presets(True),
        texts.style_first("Starry"),
        texts.unknown_preset("nope"),
        texts.private_only("painter_bot"),
        texts.private_only(None),
        texts.queued(1, None),
        texts.queued(4, 754.0),
        texts.painter_restarting(2),
        texts.progress(5, 10),
        texts.progress(50, 200, scale=(1, 5, 512)),
        texts.progress(180, 200, scale=(4, 5, 1448)),
        texts.done(None),
        texts.done(42.0, (1448, 2048)),
        texts.full_size(2048, 1536),
        texts.delivery_refused("file too big"),
        texts.result_lost(),
        texts.failed(None),
        texts.job_failed(done),
        *(texts.job_failed(Outcome.failed("1", failure, "detail")) for failure in Failure),
        texts.admin.stats([("queued", 2), ("delivered", 5)], 83.0, 3, 7),
        texts.admin.stats([], None, 0, 0),
        texts.options(1024, 2048, True, "strong", "large", False),
        texts.colours_button(True),
        texts.colours_button(False),
        texts.fast_button(True),
        texts.admin.iterations_now(100, 1, 5000),
        texts.admin.iterations_set(300),
        texts.admin.iterations_bad(1, 5000),
        texts.admin.preset_added("waves"),
        texts.admin.preset_exists("waves"),
        texts.admin.preset_removed("waves"),
        texts.duration(3600 * 2 + 60 * 5),
    ]
    for problem in ImageProblem:
        out.append(texts.bad_image(problem, 30, 20, 64.0))
        for image in ("content", "style", "output", None):
            failure = Outcome("1", "failed", failure=Failure.BAD_IMAGE, problem=problem, image=image)
            out.append(texts.job_failed(replace(failure, width=30, height=20, limit=64.0)))
    for count in (1, 2, 5, 21):
        out += [texts.queue_full(count), texts.cancelled(count, count)]
    for state in ("queued", "running", "done", "delivered", "failed", "cancelled"):
        out.append(texts.status(state, 1, 30.0, 3, 10))
        out.append(texts.status(state, 1, 30.0, 3, 10, waiting_for_telegram=True, painter_down=True))
        out.append(texts.status(state, 2, 30.0, 3, 10, painters=(3, 4)))
        out.append(texts.status(state, 2, 30.0, 3, 10, painters=(1, 2)))
    for ready, size in ((0, 1), (1, 1), (1, 2), (3, 4), (5, 5)):
        out.append(texts.admin.painters(ready, size))
    out.append(texts.admin.painter_cannot_start("WeightsError: not a weights file"))
    for ready, error in ((True, None), (False, None), (False, "exited with code -9 while starting")):
        out.append(texts.admin.preview_painter(ready, error))
    for cls in type(texts).__mro__:
        out += [getattr(texts, name) for name, value in vars(cls).items() if isinstance(value, Text)]
    return out


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_text_composes_in_every_language(language: str) -> None:
    english, translated = sample_calls(texts_in(ENGLISH)), sample_calls(texts_in(language))
    assert len(translated) == len(english)
    for theirs, ours in zip(translated, english, strict=True):
        assert theirs.strip()
        assert "{" not in theirs, theirs
        assert "}" not in theirs, theirs
        # Only texts with no words at all (a bare progress bar, a number) may equal the English.
        if any(c.isalpha() for c in ours.replace("px", "").replace("JPEG", "")):
            assert theirs != ours, f"{language}: not translated: {ours!r}"


def test_russian_counts_take_the_right_plural_form() -> None:
    texts = texts_in("ru")
    forms = [texts.cancelled(n, 0) for n in (2, 5, 21, 22)]
    assert len(set(forms[i].replace(str(n), "") for i, n in enumerate((2, 5, 21, 22)))) == 3


def test_catalogues_are_where_the_package_ships_them() -> None:
    for language in TRANSLATED:
        path = catalogue_path(language)
        assert path.is_file()
        assert path.is_relative_to(Path(bot.texts.__file__).parent)


async def test_each_user_is_answered_in_their_language(fake: FakeTelegram, bot: BotApplication) -> None:
    for language in LANGUAGES:
        menu = fake.commands(language_code="" if language == ENGLISH else language)
        assert [(c["command"], c["description"]) for c in menu] == texts_in(language).commands()
    for user_id, code in ((3001, "ru-RU"), (3002, "zh-hans"), (3003, "pt-br")):
        fake.register_user(user_id, language_code=code)
        await fake.user_sends_text(user_id, user_id, "/start")
        reply = await fake.wait_for_message(user_id, timeout=10)
        assert reply.text == texts_for(code).help(False)
        await fake.user_sends_text(user_id, user_id, "hello")
        hint = texts_for(code).hint
        await fake.wait_for_message(user_id, lambda m, hint=hint: m.text == hint, timeout=10)


async def test_a_jobs_later_messages_are_in_its_users_language(
    fake: FakeTelegram, bot: BotApplication
) -> None:
    russian = texts_in("ru")
    fake.register_user(USER, language_code="ru")
    await fake.user_sends_photo(USER, USER, jpeg(64, 48, seed=1))
    await fake.wait_for_message(USER, lambda m: m.text == russian.content_received, timeout=10)
    await fake.user_sends_photo(USER, USER, jpeg(40, 40, seed=2))
    result = await fake.wait_for(lambda: photos(fake, USER, "ru"), timeout=JOB_TIMEOUT)
    status = result[0]
    first = status.history[0]
    assert first.text == russian.queued(1, None)
    assert [row[0]["text"] for row in (first.reply_markup or {})["inline_keyboard"]] == [
        russian.cancel_button
    ]
    assert status.text is not None
    assert status.text.startswith(russian.done(None))
    store: Store = bot.bot_data.store
    await delivered(store)
    await fake.wait_for_message(USER, lambda m: m.text == russian.ready, timeout=10)
