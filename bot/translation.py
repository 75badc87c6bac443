"""The gettext mechanism under the bot's texts: catalogues read from bot/locale, and texts in one language.

The .po files are the only copy of the translations: Babel compiles each in memory when its language is
first asked for, so there is no compiled file to forget to rebuild. README.md ("Translations") says how
to add a text or a language.
"""

from __future__ import annotations

import gettext
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "bot"
# The modules whose texts the catalogues translate (what `pybabel extract` reads, see README.md).
SOURCES = ("bot/texts.py", "bot/admin_texts.py", "bot/clip_texts.py", "bot/translation.py")


def catalogue_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def translations(language: str) -> gettext.GNUTranslations:
    """One language's catalogue, compiled in memory from its .po file (fuzzy entries are left out)."""
    with catalogue_path(language).open("rb") as file:
        catalogue = read_po(file, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalogue)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


class Translated:
    """Texts in one language: `_` and `ngettext` look a message up and fill in its placeholders."""

    def __init__(self, language: str, translations: gettext.NullTranslations) -> None:
        self.language = language
        # Between two sentences: Chinese runs them together after its full stop "。".
        self.space = "" if language == "zh" else " "
        self._translations = translations

    def _(self, message: str, **values: object) -> str:
        """`message` in this language, its placeholders filled in from `values`."""
        text = self._translations.gettext(message)
        return text.format(**values) if values else text

    def ngettext(self, singular: str, plural: str, count: int, **values: object) -> str:
        """The form of the message for `count` in this language, with `count` and `values` filled in."""
        return self._translations.ngettext(singular, plural, count).format(count=count, **values)

    def duration(self, seconds: float) -> str:
        if seconds < 60:
            return self._("{seconds} s", seconds=max(1, round(seconds)))
        minutes = round(seconds / 60)
        if minutes < 60:
            return self._("{minutes} min", minutes=minutes)
        return self._("{hours} h {minutes} min", hours=minutes // 60, minutes=minutes % 60)

    def size(self, count: int) -> str:
        """A number of bytes in GiB, or MiB under one GiB."""
        if count >= 1024**3:
            return self._("{value} GiB", value=f"{count / 1024**3:.1f}")
        return self._("{value} MiB", value=count >> 20)

    def state(self, state: str) -> str:
        """A job status's name (storage's JobStatus values)."""
        names = {
            "queued": self._("queued"),
            "running": self._("being painted"),
            "done": self._("finished"),
            "delivered": self._("delivered"),
            "failed": self._("failed"),
            "cancelled": self._("cancelled"),
        }
        return names.get(state, state)


class Text:
    """A text with nothing to fill in: `texts.hint` is the hint in the language of `texts`."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __get__(self, texts: Translated, owner: type[Translated]) -> str:
        return texts._(self.message)
