"""Texts that carry facts: the scale of a big painting in its progress, a shrink in its caption."""

from __future__ import annotations

from bot.i18n import texts_in

texts = texts_in("en")


def test_progress_names_the_scale_of_a_big_painting() -> None:
    assert texts.progress(5, 10) == texts.progress(5, 10, scale=(1, 1, 512))
    first = texts.progress(50, 200, scale=(1, 5, 512))
    later = texts.progress(180, 200, scale=(4, 5, 1448))
    assert first.startswith(texts.progress(50, 200))
    assert "512 px (step 1 of 5)" in first
    assert "1448 px (step 4 of 5)" in later
    assert first.splitlines()[1] != later.splitlines()[1]  # sketching, then refining


def test_a_shrunk_painting_is_explained_in_its_caption() -> None:
    assert texts.done(60.0) == texts.done(60.0, None)
    shrunk = texts.done(60.0, (1448, 2048))
    assert shrunk.startswith(texts.done(60.0))
    assert "1448 px" in shrunk
    assert "2048 px" in shrunk
