"""The coarse-to-fine schedule: which long sides to optimise at, and how many iterations each gets."""

from __future__ import annotations

# The coarsest scale's long side stays at or above this: below it relu5_1 sees only a few pixels.
MIN_SIDE = 128
# Each coarser scale gets this many times the iterations of the next finer one; at a quarter of the
# pixels an iteration costs about a quarter, so most of the work happens where it is cheap.
RATIO = 2.0


def schedule(long_side: int, iterations: int, min_side: int = MIN_SIDE) -> list[tuple[int, int]]:
    """[(long side, iterations), ...] coarsest first, ending at `long_side`; the iterations sum to the budget.

    Sides halve from `long_side` while they stay ≥ `min_side`; a budget too small for every scale to get
    an iteration drops the coarsest ones.
    """
    sides = [long_side]
    while round(sides[-1] / 2) >= min_side:
        sides.append(round(sides[-1] / 2))
    sides = sides[: max(1, min(len(sides), iterations))]
    shares = [RATIO**level for level in range(len(sides))]  # finest first
    counts = [max(1, int(iterations * share / sum(shares))) for share in shares]
    counts[-1] += iterations - sum(counts)  # rounding goes to the coarsest, cheapest scale
    return list(zip(reversed(sides), reversed(counts), strict=True))
