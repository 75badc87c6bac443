"""How a clip is painted: frame by frame where this host does that within its budget, else fast."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.clip_plan import plan_clip
from bot.config import Config
from bot.cost import clip_work
from bot.i18n import texts_in
from bot.painting import EngineFeatures
from storage import JobRequest, Session

texts = texts_in("en")
CONFIG = Config(token="1:x", max_animation_size=480, animation_target_seconds=300.0)
REQUEST = JobRequest(iterations=100, max_size=1024)
BOTH = EngineFeatures(previews=True, adain_start=True)


def clip(frames: int, size: tuple[int, int] = (640, 360)) -> Session:
    return Session(1, 1, Path("c.mp4"), size, 5, frames)


def test_frames_are_painted_at_the_animation_size_and_never_enlarged() -> None:
    assert plan_clip(REQUEST, clip(12), CONFIG, BOTH, 0.001, texts).request == JobRequest(100, 480)
    small = plan_clip(REQUEST, clip(12, (320, 240)), CONFIG, BOTH, 0.001, texts).request
    assert small is not None
    assert small.max_size == 320
    chosen = plan_clip(JobRequest(100, 256), clip(12), CONFIG, BOTH, 0.001, texts).request
    assert chosen is not None
    assert chosen.max_size == 256  # a chat that chose a smaller size gets it


def test_a_clip_too_slow_to_paint_here_goes_fast_and_says_why() -> None:
    at = JobRequest(100, 480)
    pace = 1.1 * CONFIG.animation_target_seconds / clip_work(at, 480, 24)  # just over the budget
    plan = plan_clip(REQUEST, clip(24), CONFIG, BOTH, pace, texts)
    assert plan.request == JobRequest(100, 480, fast=True)
    assert plan.note == texts.clips.fast_instead(1.1 * CONFIG.animation_target_seconds)

    quick = plan_clip(REQUEST, clip(24), CONFIG, BOTH, pace / 1.2, texts)  # just within it
    assert quick.request == at
    assert quick.note is None


def test_without_fast_mode_a_clip_too_slow_is_refused_with_the_time_it_would_take() -> None:
    at = JobRequest(100, 480)
    pace = 2 * CONFIG.animation_target_seconds / clip_work(at, 480, 24)
    plan = plan_clip(REQUEST, clip(24), CONFIG, EngineFeatures(), pace, texts)
    assert plan.request is None
    assert plan.note == texts.clips.too_slow(2 * CONFIG.animation_target_seconds, 300.0)


def test_before_any_pace_is_measured_a_clip_goes_fast_where_it_can() -> None:
    assert plan_clip(REQUEST, clip(24), CONFIG, BOTH, None, texts).request == JobRequest(100, 480, fast=True)
    unmeasured = plan_clip(REQUEST, clip(24), CONFIG, EngineFeatures(), None, texts)
    assert unmeasured.request == JobRequest(100, 480)  # nothing known and no fast mode: painted


def test_a_chat_in_fast_mode_keeps_it() -> None:
    plan = plan_clip(JobRequest(100, 1024, fast=True), clip(24), CONFIG, BOTH, 0.001, texts)
    assert plan.request == JobRequest(100, 480, fast=True)
    assert plan.note is None


def test_a_photo_session_is_no_clip_to_plan() -> None:
    with pytest.raises(ValueError, match="no clip"):
        plan_clip(REQUEST, Session(1, 1, Path("c.jpg"), (640, 360)), CONFIG, BOTH, 0.001, texts)
