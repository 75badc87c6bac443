"""What a job costs, for wait estimates: the one cost model (engine.budget), in units of one iteration at
512 px.

Storage keeps the number on the job and shares recent jobs' time out by it (`Jobs.queue_position`), so
the unit only has to be the same for every job of a lane.
"""

from __future__ import annotations

from engine.budget import REFERENCE_SIZE
from engine.budget import work as painting_work
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
