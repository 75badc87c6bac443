"""How a clip will be painted: painted frame by frame where this host does that soon enough, else fast."""

from __future__ import annotations

import dataclasses

from bot.config import Config
from bot.cost import clip_work
from bot.painting import EngineFeatures
from bot.texts import Texts
from storage import JobRequest, Session


@dataclasses.dataclass(frozen=True)
class ClipPlan:
    """How a clip will be painted: the request, and what to tell the user about its mode (or why not)."""

    request: JobRequest | None  # None: refused, `note` says why
    note: str | None = None  # added to the queued message: why fast mode, or why refused


def plan_clip(
    request: JobRequest,
    session: Session,
    config: Config,
    features: EngineFeatures,
    pace: float | None,
    texts: Texts,
) -> ClipPlan:
    """The request for a clip: frames at MAX_ANIMATION_SIZE at most, painted frame by frame where this
    host does that within ANIMATION_TARGET_SECONDS (by the painters' measured `pace`), else fast.

    The chat's fast option is kept. Before the painters have measured their pace nothing is known of
    it, so a clip goes fast where fast mode exists.
    """
    if session.content_size is None or session.content_frames is None:
        raise ValueError(f"chat {session.chat_id}: no clip to plan")
    side = min(config.max_animation_size, request.max_size, max(session.content_size))
    request = dataclasses.replace(request, max_size=side)
    if request.fast:
        return ClipPlan(request)
    painted = None
    if pace is not None:
        painted = clip_work(request, side, session.content_frames) * pace
        if painted <= config.animation_target_seconds:
            return ClipPlan(request)
    if features.previews:
        note = texts.clips.fast_instead(painted) if painted is not None else None
        return ClipPlan(dataclasses.replace(request, fast=True), note)
    if painted is None:
        return ClipPlan(request)  # nothing measured and no fast mode: painted, as a picture would be
    return ClipPlan(None, texts.clips.too_slow(painted, config.animation_target_seconds))
