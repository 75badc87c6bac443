"""From a chat's choices to the engine's settings: the size, a job's work for estimates, progress words."""

from __future__ import annotations

import pytest

from bot.i18n import texts_in
from bot.requests import chosen_size, new_request, work
from engine.multiscale import levels, schedule
from storage import JobRequest, Options, Settings

texts = texts_in("en")  # the fake's users speak English


def test_a_chat_without_a_choice_gets_the_default_size_within_the_maximum() -> None:
    settings = Settings(iterations=100, max_image_size=2048)
    assert chosen_size(Options(), settings, 1024) == 1024
    assert chosen_size(Options(output_size=2048), settings, 1024) == 2048
    assert chosen_size(Options(output_size=2048), Settings(max_image_size=768), 1024) == 768
    request = new_request(Options(), settings, 1024, "lbfgs", fast_available=True, adain_start=True)
    assert (request.max_size, request.iterations, request.initial) == (1024, 100, "adain")


def test_work_counts_each_scale_by_its_pixels() -> None:
    request = JobRequest(iterations=100, max_size=2048)
    # 512 px: one scale, 100 iterations of one unit each.
    assert work(request, 512) == pytest.approx(100.0)
    # A small photo is not enlarged: the work is a 600-px single-scale painting's.
    assert work(request, 600) == pytest.approx(100 * (600 / 512) ** 2)
    # 2048 px, coarse to fine: each scale's iterations cost their own area and, above the first scale,
    # their coarser levels' (2048: 1024 and 512), far less than 100 × 16.
    plan = schedule(2048, 100, 512)
    assert [side for side, _ in plan] == [512, 724, 1024, 1448, 2048]
    scales = sum(n * (side / 512) ** 2 for side, n in plan)
    coarser = sum(n * sum((level / 512) ** 2 for level in levels(side, 512)) for side, n in plan[1:])
    assert coarser == pytest.approx(50 * 1 + 25 * 1 + 12 * (2 + 1) + 10 * (4 + 1), rel=0.01)
    assert work(request, 4000) == pytest.approx(scales + coarser)
    assert 500 < scales + coarser < 900
    assert work(JobRequest(iterations=100, max_size=2048, fast=True), 4000) is None


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
