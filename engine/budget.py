"""What a painting costs and which size fits a time budget: the one cost model, in units of one iteration
at 512 px, and the size a host's pace allows.

A worker measures its pace when it starts (engine.pace: seconds per iteration at 512 px); a painting of
side S then takes about `work(S, iterations)` × pace. The bot shares its recent jobs' time out by the
same unit for wait estimates, and `neural-style doctor` prints it per size.
"""

from __future__ import annotations

from engine.multiscale import levels, schedule
from engine.params import StyleParams

REFERENCE_SIZE = 512
"""The unit of work is one iteration at this long side: an iteration costs about its pixels."""

# The sizes a default is chosen from, each about twice the pixels of the one before; never below the first.
SIZES = (512, 768, 1024, 1448, 2048)


def work(side: int, iterations: int, base: int = StyleParams.multiscale_base) -> float:
    """An optimisation's cost at long side `side`: a big painting runs coarse to fine, so most of its
    iterations cost less than its full size."""
    plan = schedule(side, iterations, base)
    return sum(count * iteration_work(scale, index == 0, base) for index, (scale, count) in enumerate(plan))


def iteration_work(side: int, coarsest: bool, base: int = StyleParams.multiscale_base) -> float:
    """One iteration's cost at a scale of long side `side`; a scale above the coarsest also paints the
    style on the picture shrunk to its coarser levels."""
    shrunk = [] if coarsest else levels(side, base)
    return sum((s / REFERENCE_SIZE) ** 2 for s in (side, *shrunk))


def estimates(pace: float, iterations: int, max_size: int) -> dict[int, float]:
    """Seconds a painting of each of `SIZES` up to `max_size` takes at `pace` (seconds per unit of work)."""
    sides = [side for side in SIZES if side <= max_size] or [SIZES[0]]
    return {side: work(side, iterations) * pace for side in sides}


def largest_within(pace: float, iterations: int, target: float, max_size: int) -> int:
    """The largest of `SIZES` (up to `max_size`) painted within `target` seconds at `pace`; the smallest
    if none is, as a painting below it is not worth making."""
    fitting = [side for side, seconds in estimates(pace, iterations, max_size).items() if seconds <= target]
    return max(fitting, default=SIZES[0])


# A fast clip frame's optical flow (two DIS flows and their consistency, engine.flow) as a share of its
# feed-forward pass at the same size: 0.017-0.067 s against 1.5-2.8 s at 256 px on a 2-core CPU
# (bench/notes/animations.md); rounded up.
FLOW_SHARE = 0.05


def clip_work(side: int, frames: int, iterations: int, frame_iterations: int, fast: bool) -> float:
    """A clip's cost at long side `side`: painted, the first frame as a picture and each later one
    `frame_iterations` single-scale iterations (engine.animate); fast, each frame's pixels once (as a fast
    picture counts) plus the flow from the frame before. The flow beside an optimisation's iterations is
    left out."""
    pixels = (side / REFERENCE_SIZE) ** 2
    if fast:
        return pixels * (frames + (frames - 1) * FLOW_SHARE)
    return work(side, iterations) + (frames - 1) * frame_iterations * pixels
