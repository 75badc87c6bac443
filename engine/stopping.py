"""Early stopping: a painting ends when it has stopped changing what a person sees.

The iteration count is the most a painting may take. Each scale (engine.multiscale) watches its own
objective; once its lowest value stops falling the scale ends, its unused iterations not run.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from engine.params import StyleParams

# A scale ends once its lowest objective has fallen by less than the tolerance (a share of it) over this
# many iterations.
STOP_WINDOW = 10
# L-BFGS's tolerance unless StyleParams.stop_tolerance says otherwise; Adam's is 0, every iteration, as
# anishathalye/neural-style. At 512 px the bot's job stopped so scores within 2 % of the full run's
# objective and held-out style distance (bench/notes/early-stopping.md; 1024 px is not measured yet).
STOP_TOLERANCE = 0.005


def stop_tolerance(params: StyleParams) -> float:
    """The early-stopping tolerance a run uses: its own, else the optimizer's default (0: off)."""
    if params.stop_tolerance is not None:
        return params.stop_tolerance
    return STOP_TOLERANCE if params.optimizer == "lbfgs" else 0.0


class Plateau:
    """Whether one scale's objective has stopped falling: its lowest value now is within `tolerance` (a
    share) of its lowest `window` iterations ago. Fed every iteration's total; 0 never stops."""

    def __init__(self, tolerance: float, window: int = STOP_WINDOW) -> None:
        self.tolerance = tolerance
        self.count = 0  # iterations seen
        self.lowest: deque[float] = deque(maxlen=window + 1)  # the lowest so far, after each of the last ones

    def add(self, total: float) -> None:
        previous = self.lowest[-1] if self.lowest else np.inf
        self.lowest.append(total if total < previous else previous)  # a NaN is never the lowest
        self.count += 1

    def __call__(self) -> bool:
        if self.tolerance <= 0.0 or len(self.lowest) < (self.lowest.maxlen or 0):
            return False
        before, now = self.lowest[0], self.lowest[-1]
        return bool(before - now <= self.tolerance * abs(before))  # inf - inf is NaN: not converged
