"""Coarse to fine: the sizes a big painting is optimised at, and how many iterations each gets.

A style's features see a fixed number of pixels, so a painting optimised at 2048 px at once gets small
texture over large shapes that stay photographic. Painted first at the base size (where the style's
features span the picture's large shapes) and then refined at sizes √2 apart, each starting from the
previous result enlarged, the large shapes are painted and the fine scales add sharp strokes.
"""

from __future__ import annotations

import math

# Each finer scale's long side is this many times the previous one's (twice the pixels).
STEP = math.sqrt(2.0)
# The last scale is the target; a scale less than this many times smaller than the target is skipped,
# so no scale is a near-copy of the next.
LEAST_STEP = 1.2
# Each finer scale gets this share of the previous one's iterations (an iteration there costs twice as
# much, so every scale takes about the same time): the base paints, the finer scales refine.
FINER_SHARE = 0.5
# …but at least this many: an enlarged image needs a few steps to sharpen its strokes.
MIN_FINER = 10


def sides(long_side: int, base: int) -> list[int]:
    """The long sides to optimise at, coarsest first, ending at `long_side`; one side at or below `base`."""
    if long_side <= base * LEAST_STEP:
        return [long_side]
    out = [base]
    while out[-1] * STEP * LEAST_STEP <= long_side:
        out.append(round(base * STEP ** len(out)))
    return [*out, long_side]


def schedule(long_side: int, iterations: int, base: int) -> list[tuple[int, int]]:
    """[(long side, iterations), …] coarsest first: `iterations` at the base, fewer at each finer scale."""
    plan = sides(long_side, base)
    counts = [iterations] + [
        min(iterations, max(MIN_FINER, round(iterations * FINER_SHARE**k))) for k in range(1, len(plan))
    ]
    return list(zip(plan, counts, strict=True))
