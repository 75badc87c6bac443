"""Coarse to fine: the sizes a big painting is optimised at, and how many iterations each gets.

A style's features see a fixed number of pixels, so a painting optimised at 2048 px at once gets small
texture over large shapes that stay photographic. Painted first at the base size (where the style's
features span the picture's large shapes) and then refined at sizes √2 apart, each starting from the
previous result enlarged, the large shapes are painted and the fine scales add sharp strokes.

Each finer scale fits the style's statistics at its own pixels, and on its own forgets the coarser sizes':
a big painting shrunk back to the base size strays from the style. So a finer scale also matches the
style on the image shrunk to coarser levels (`levels`; engine.objective), which keeps the shrunk painting
as close to the style as the base's (the figures: BENCHMARKS.md, "Big paintings").
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


def levels(side: int, base: int) -> list[int]:
    """The coarser long sides a scale of `side` px also matches the style at, finest first: each octave
    below `side` still more than LEAST_STEP times the base, then the base itself; none at or below it.

    2048 → [1024, 512]; 1448 → [724, 512]; 1024 or 724 → [512] (base 512).
    """
    if side <= base:
        return []
    out: list[int] = []
    while side / 2 ** (len(out) + 1) > base * LEAST_STEP:
        out.append(round(side / 2 ** (len(out) + 1)))
    return [*out, base]
