"""The user's language, from Telegram's `language_code`, and the bot's texts in it."""

from __future__ import annotations

import functools
import gettext

from bot.texts import Texts
from bot.translation import translations

ENGLISH = "en"
# The languages the bot speaks: English (the message ids themselves), Russian, Chinese (Simplified).
LANGUAGES = (ENGLISH, "ru", "zh")
# Telegram's language codes (IETF tags) that mean Simplified Chinese; Traditional Chinese gets English.
_SIMPLIFIED_CHINESE = ("zh", "zh-hans", "zh-cn", "zh-sg")


def language_of(code: str | None) -> str:
    """The bot's language for a Telegram user's `language_code`: ru… is Russian, zh / zh-hans / zh-cn
    Chinese, anything else (or none) English."""
    tag = (code or "").strip().lower().replace("_", "-")
    if tag.split("-")[0] == "ru":
        return "ru"
    if tag in _SIMPLIFIED_CHINESE or tag.startswith("zh-hans-"):
        return "zh"
    return ENGLISH


def texts_for(code: str | None) -> Texts:
    """The bot's texts for a user with this Telegram `language_code`."""
    return texts_in(language_of(code))


@functools.cache
def texts_in(language: str) -> Texts:
    """The bot's texts in one of LANGUAGES."""
    if language not in LANGUAGES:
        raise ValueError(f"the bot has no texts in {language!r}; it speaks {', '.join(LANGUAGES)}")
    if language == ENGLISH:
        return Texts(language, gettext.NullTranslations())
    return Texts(language, translations(language))
