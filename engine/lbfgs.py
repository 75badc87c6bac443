"""L-BFGS on the device: the style objective minimised within valid pixels, every vector kept in TensorFlow.

A projected two-loop L-BFGS in float32. scipy's L-BFGS-B (engine.lbfgs_scipy) spends 0.13–0.2 s of
float64 bookkeeping per evaluation at 512 px, on the host; here the image, the gradient and the history
stay where the network runs, and only the four losses and a few dot products come to the host per
evaluation. It is driven as a generator of evaluations, like engine.lbfgs_scipy.lbfgs.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from engine.params import Losses

# Pairs of correction vectors kept (as scipy's default); each costs 2 × 4 bytes per input value.
MEMORY = 10
# Armijo's sufficient decrease: the loss must fall by this share of what the gradient predicts.
C1 = 1e-4
# Halvings of the step before a line search gives up, resets the history and restarts from the best point.
HALVINGS = 10
# Without history the direction is the projected gradient, scaled so its largest pixel move is this many
# units (pixels are 0..255): scipy's first step moves the whole image by a norm of 1 and creeps.
FIRST_MOVE = 4.0
# A pair (s, y) is kept only if s·y > CURVATURE · |g·s| (L-BFGS-B's test, which scales with the loss as
# both sides do): the curvature along the step is positive and not lost in float32 round-off.
CURVATURE = float(np.finfo(np.float32).eps)

# (preprocessed (1, H, W, 3) float32 image) → ((content, style, tv, total) float32, float32 gradient).
LossAndGrad = Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]
Events = Generator[tuple[int, Losses, np.ndarray | None], None, tuple[np.ndarray, Losses]]


@dataclass
class LbfgsStats:
    """Counters of one run; pass one in to read them afterwards (benchmarks, logs)."""

    evaluations: int = 0
    iterations: int = 0  # accepted steps
    line_search_failures: int = 0  # backtracking ran out without sufficient decrease
    resets: int = 0  # history dropped (a failure or a direction that was not downhill)
    skipped_pairs: int = 0  # curvature s·y too small: the pair was not stored


_VECTOR = tf.TensorSpec((None,), tf.float32)
_SCALAR = tf.TensorSpec((), tf.float32)


@tf.function(
    input_signature=[
        _VECTOR,
        _VECTOR,
        _VECTOR,
        _VECTOR,
        (_VECTOR,) * MEMORY,
        (_VECTOR,) * MEMORY,
        tf.TensorSpec((MEMORY,), tf.float32),
        _SCALAR,
    ]
)
def _direction(
    x: tf.Tensor,
    g: tf.Tensor,
    low: tf.Tensor,
    high: tf.Tensor,
    s: tuple[tf.Tensor, ...],
    y: tuple[tf.Tensor, ...],
    rho: tf.Tensor,
    gamma: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor]:
    """The two-loop recursion on the free pixels: (direction (N,), (g·d, max |d|)).

    Pairs come newest first; an empty slot has rho 0 and changes nothing. A pixel held at a bound by its
    gradient is not free: it is left out of the recursion and does not move.
    """
    free = ~(((x <= low) & (g > 0.0)) | ((x >= high) & (g < 0.0)))  # (N,)
    q = tf.where(free, g, 0.0)  # (N,)
    alphas = []
    for i in range(MEMORY):
        alpha = rho[i] * tf.reduce_sum(s[i] * q)
        q -= alpha * y[i]
        alphas.append(alpha)
    r = gamma * q
    for i in reversed(range(MEMORY)):
        beta = rho[i] * tf.reduce_sum(y[i] * r)
        r += (alphas[i] - beta) * s[i]
    d = tf.where(free, -r, 0.0)  # (N,)
    return d, tf.stack([tf.reduce_sum(g * d), tf.reduce_max(tf.abs(d))])


@tf.function(input_signature=[_VECTOR, _VECTOR, _SCALAR, _VECTOR, _VECTOR])
def _trial(x: tf.Tensor, d: tf.Tensor, t: tf.Tensor, low: tf.Tensor, high: tf.Tensor) -> tf.Tensor:
    """The projected step: x + t·d clipped into the box, (N,)."""
    return tf.clip_by_value(x + t * d, low, high)


@tf.function(input_signature=[_VECTOR, _VECTOR, _VECTOR, _VECTOR])
def _compare(x: tf.Tensor, g: tf.Tensor, x_t: tf.Tensor, g_t: tf.Tensor) -> tf.Tensor:
    """(g·s, s·y, y·y) for s = x_t - x, y = g_t - g; y·y is not finite exactly when g_t is not."""
    s, y = x_t - x, g_t - g
    return tf.stack([tf.reduce_sum(g * s), tf.reduce_sum(s * y), tf.reduce_sum(y * y)])


@dataclass(frozen=True)
class _Point:
    x: tf.Tensor  # (N,) the image, flat
    g: tf.Tensor  # (N,) its gradient
    losses: Losses


class _Done(Exception):
    """The budget is spent or the caller asked to stop."""


def lbfgs(
    loss_and_grad: LossAndGrad,
    start: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    evaluations: int,
    previews: frozenset[int] = frozenset(),
    should_stop: Callable[[], bool] = lambda: False,
    stats: LbfgsStats | None = None,
) -> Events:
    """Minimise from `start` (1, H, W, 3) within [low, high] (per channel, (3,)) in at most `evaluations`.

    Yields (evaluation number, losses of the evaluated point, best image so far on the numbers in
    `previews`, else None); returns the lowest-loss image and its losses. Every evaluation counts, line
    search trials too. `should_stop` is asked after every yield and ends the run; so does closing the
    generator. It ends before the budget only when two line searches in a row fail without progress or
    no free pixel has a gradient (converged).
    """
    stats = LbfgsStats() if stats is None else stats
    shape = start.shape
    lower = tf.constant(np.broadcast_to(low, shape).reshape(-1), tf.float32)  # (N,)
    upper = tf.constant(np.broadcast_to(high, shape).reshape(-1), tf.float32)  # (N,)
    empty = tf.zeros_like(lower)
    best: list[_Point] = []  # the lowest finite loss seen: previewed and returned
    footing: list[_Point] = []  # the lowest with a finite gradient too: where a failed search restarts

    def evaluate(
        x: tf.Tensor, base: _Point | None
    ) -> Generator[tuple[int, Losses, np.ndarray | None], None, tuple[_Point, np.ndarray, bool]]:
        """Score `x`; return it, (g·s, s·y, y·y) from `base` (or from x itself) and whether all is finite."""
        if stats.evaluations >= evaluations:
            raise _Done
        values, grad = loss_and_grad(tf.reshape(x, shape))
        g = tf.reshape(grad, (-1,))
        ref = base or _Point(x, empty, Losses(0.0, 0.0, 0.0, 0.0))
        host = tf.concat([tf.cast(values, tf.float32), _compare(ref.x, ref.g, x, g)], 0).numpy()  # (7,)
        stats.evaluations += 1
        point = _Point(x, g, Losses(*(float(v) for v in host[:4])))
        total = point.losses.total
        if np.isfinite(total) and (not best or total < best[0].losses.total):
            best[:] = [point]
        finite = bool(np.isfinite(host).all())
        if finite and (not footing or total < footing[0].losses.total):
            footing[:] = [point]
        shown = best[0].x.numpy().reshape(shape) if best and stats.evaluations in previews else None
        yield stats.evaluations, point.losses, shown
        if should_stop():
            raise _Done
        return point, host[4:], finite

    try:
        point, _, finite = yield from evaluate(
            tf.clip_by_value(tf.constant(start.reshape(-1)), lower, upper), None
        )
        if not finite:
            raise ValueError("the loss or its gradient is not finite at the start")
        pairs: deque[tuple[tf.Tensor, tf.Tensor, float]] = deque(
            maxlen=MEMORY
        )  # (s, y, 1 / s·y), newest first
        gamma = 1.0
        failed_at = math.inf  # the best loss when the last line search failed
        while True:
            d, (slope, largest) = _recursion(point, lower, upper, pairs, gamma, empty)
            if not slope < 0.0 and pairs:  # not downhill (or not finite): forget the history
                stats.resets += 1
                pairs.clear()
                d, (slope, largest) = _recursion(point, lower, upper, pairs, gamma, empty)
            if not slope < 0.0:  # no free pixel has a gradient: converged
                break
            t = 1.0 if pairs else FIRST_MOVE / largest
            for _ in range(HALVINGS):
                trial, (gs, sy, yy), finite = yield from evaluate(_trial(point.x, d, t, lower, upper), point)
                # Armijo on the projected step; min(·, 0) so a clipped step can never be let uphill.
                if finite and trial.losses.total <= point.losses.total + C1 * min(gs, 0.0):
                    break
                t /= 2.0
            else:
                stats.line_search_failures += 1
                stats.resets += 1
                pairs.clear()
                if footing[0].losses.total >= failed_at:  # a second failure with no progress between
                    break
                failed_at = footing[0].losses.total
                point = footing[0]
                continue
            stats.iterations += 1
            if sy > CURVATURE * abs(gs):
                pairs.appendleft((trial.x - point.x, trial.g - point.g, 1.0 / sy))
                gamma = sy / yy
            else:
                stats.skipped_pairs += 1
            point = trial
    except _Done:
        pass
    if not best:
        raise RuntimeError("L-BFGS made no evaluation")
    return best[0].x.numpy().reshape(shape), best[0].losses


def _recursion(
    point: _Point,
    low: tf.Tensor,
    high: tf.Tensor,
    pairs: deque[tuple[tf.Tensor, tf.Tensor, float]],
    gamma: float,
    empty: tf.Tensor,
) -> tuple[tf.Tensor, tuple[float, float]]:
    """`_direction` with the history padded to MEMORY slots: (d (N,), (g·d, max |d|) on the host)."""
    padding = [(empty, empty, 0.0)] * (MEMORY - len(pairs))
    s, y, rho = zip(*pairs, *padding, strict=True)
    d, numbers = _direction(
        point.x, point.g, low, high, s, y, tf.constant(rho, tf.float32), tf.constant(gamma if pairs else 1.0)
    )
    slope, largest = (float(v) for v in numbers.numpy())
    return d, (slope, largest)
