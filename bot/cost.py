"""What a job costs, for wait estimates: the one cost model (engine.budget), in units of one iteration at
512 px.

Storage keeps the number on the job and shares recent jobs' time out by it (`Jobs.queue_position`), so
the unit only has to be the same for every job of a lane.
"""

from __future__ import annotations

from engine.budget import REFERENCE_SIZE
from engine.budget import clip_work as animation_work
from engine.budget import work as painting_work
from engine.params import StyleParams
from storage import JobRequest


def work(request: JobRequest, photo_side: int) -> float:
    """A job's cost: an optimisation's by engine.budget; a fast job (one feed-forward pass, a lane of its
    own) costs its pixels once.

    `photo_side` is the content photo's long side: a photo smaller than the size asked is not enlarged.
    """
    side = min(request.max_size, photo_side)
    if request.fast:
        return (side / REFERENCE_SIZE) ** 2
    return painting_work(side, request.iterations)


def clip_work(request: JobRequest, side: int, frames: int) -> float:
    """A clip's cost: `frames` frames at long side `side` (already within the request's size), painted
    frame by frame or, for a fast request, each through the feed-forward network."""
    later = StyleParams().frame_iterations  # the engine's: the bot does not change it
    return animation_work(side, frames, request.iterations, later, request.fast)
