"""What a job costs, for wait estimates: the one cost model, in units of one iteration at 512 px.

Storage keeps the number on the job and shares recent jobs' time out by it (`Jobs.queue_position`), so
the unit only has to be the same for every job of a lane.
"""

from __future__ import annotations

from engine.multiscale import levels, schedule
from engine.params import StyleParams
from storage import JobRequest

REFERENCE_SIZE = 512
"""The unit of work is one iteration at this long side: an iteration costs about its pixels."""


def work(request: JobRequest, photo_side: int) -> float:
    """A job's cost: a big painting runs coarse to fine, so most of its iterations cost less than its full
    size; a fast job (one feed-forward pass, a lane of its own) costs its pixels once.

    `photo_side` is the content photo's long side: a photo smaller than the size asked is not enlarged.
    """
    side = min(request.max_size, photo_side)
    if request.fast:
        return (side / REFERENCE_SIZE) ** 2
    base = StyleParams.multiscale_base
    total = 0.0
    for index, (scale, iterations) in enumerate(schedule(side, request.iterations, base)):
        # A scale above the first also paints the style on the picture shrunk to its coarser levels.
        shrunk = levels(scale, base) if index else []
        total += iterations * sum((s / REFERENCE_SIZE) ** 2 for s in (scale, *shrunk))
    return total
