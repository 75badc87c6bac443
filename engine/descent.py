"""The two descents of the optimisation: Adam as anishathalye/neural-style runs it, and L-BFGS after a few
Adam steps, each a generator of (evaluation, losses, preview) that returns its best image.

engine.stylize runs them per scale of a painting, engine.animate per frame of a clip.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator

import numpy as np
import tensorflow as tf

from engine.compiled import AdamState, Compiled
from engine.lbfgs import LbfgsStats, lbfgs
from engine.objective import Objective
from engine.params import Losses, StyleParams

logger = logging.getLogger(__name__)


class Cancelled(Exception):
    """The caller asked to stop; raised out of the optimisation between two iterations."""


# L-BFGS starts after this many Adam steps on the first scale (see `lbfgs_after_adam`).
LBFGS_WARMUP = 2
# On a GPU, Adam runs this many steps per call at most: enough to keep it busy between host round trips.
MAX_STEPS_PER_CALL = 50
# There, a call lasts about this long, so progress and cancellation stay this responsive.
SECONDS_PER_CALL = 1.0

# (evaluation within the scale, its losses, preview image or None) events and the scale's best at the end.
Steps = Generator[tuple[int, Losses, np.ndarray | None], None, tuple[np.ndarray, Losses]]


def lbfgs_after_adam(
    fn: Compiled,
    objective: Objective,
    start: np.ndarray,
    evaluations: int,
    warmup: int,
    params: StyleParams,
    previews: frozenset[int],
    cancel: Callable[[], bool],
    converged: Callable[[], bool],
) -> Steps:
    """`warmup` Adam steps as anishathalye/neural-style takes them, then L-BFGS bounded to valid pixels for
    the rest of the budget, or until `converged` says so; with `params.average_decay`, the average of the
    iterates is previewed and returned (`averaged`).

    From the content image, L-BFGS alone can creep for dozens of evaluations at 512 px: its line
    search stops where the first pixel reaches the bounds. Two Adam steps (each moves every pixel by
    about the learning rate) get it clear; see BENCHMARKS.md.
    """
    if not params.average_decay:
        return (
            yield from _lbfgs_after_adam(
                fn, objective, start, evaluations, warmup, params, previews, cancel, converged
            )
        )
    every = frozenset(range(1, evaluations + 1))
    steps = _lbfgs_after_adam(fn, objective, start, evaluations, warmup, params, every, cancel, converged)
    return (yield from averaged(steps, fn, objective, start, params.average_decay, previews))


def _lbfgs_after_adam(
    fn: Compiled,
    objective: Objective,
    start: np.ndarray,
    evaluations: int,
    warmup: int,
    params: StyleParams,
    previews: frozenset[int],
    cancel: Callable[[], bool],
    converged: Callable[[], bool],
) -> Steps:
    """`lbfgs_after_adam` without the averaging; previews show the lowest-loss image so far."""
    warmup = min(warmup, evaluations)
    best: tuple[np.ndarray, Losses] | None = None
    image = start
    if warmup:
        early = frozenset(p for p in previews if p <= warmup)
        best = yield from _adam(fn, objective, start, warmup, params, early, cancel, None, converged)
        image = best[0]
    if evaluations > warmup and not converged():
        network = objective.network
        low, high = -network.mean_pixel, 255.0 - network.mean_pixel
        later = frozenset(p - warmup for p in previews if p > warmup)
        stats = LbfgsStats()

        def loss_and_grad(batch: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return fn.loss_and_grad(batch, objective.targets, objective.coefficients)

        def ends() -> bool:
            return cancel() or converged()

        steps = lbfgs(loss_and_grad, image, low, high, evaluations - warmup, later, ends, stats)
        try:
            while True:
                try:
                    index, losses, preview = next(steps)
                except StopIteration as stop:
                    found: tuple[np.ndarray, Losses] = stop.value
                    break
                yield warmup + index, losses, preview
        finally:
            steps.close()
            logger.debug("L-BFGS: %s", stats)
        if best is None or found[1].total <= best[1].total:
            best = found
    assert best is not None
    return best


def adam(
    fn: Compiled,
    objective: Objective,
    start: np.ndarray,
    iterations: int,
    params: StyleParams,
    previews: frozenset[int],
    cancel: Callable[[], bool],
    steps_per_call: int | None,
    converged: Callable[[], bool],
) -> Steps:
    """Adam as anishathalye/neural-style runs it, several steps per compiled call, until `iterations` or
    `converged`; previews end a call so they are exact. With `params.average_decay`, the average of the
    iterates is previewed and returned (`averaged`), one step per call."""
    if not params.average_decay:
        return (
            yield from _adam(
                fn, objective, start, iterations, params, previews, cancel, steps_per_call, converged
            )
        )
    every = frozenset(range(1, iterations + 1))
    steps = _adam(fn, objective, start, iterations, params, every, cancel, steps_per_call, converged)
    return (yield from averaged(steps, fn, objective, start, params.average_decay, previews))


def averaged(
    steps: Steps,
    fn: Compiled,
    objective: Objective,
    start: np.ndarray,
    decay: float,
    previews: frozenset[int],
) -> Steps:
    """Relay `steps`, which preview an image at every evaluation, and return the exponential moving average
    of `start` and those images with its losses; previews on `previews` show the average so far.

    Bias-corrected as crowsonkb/style-transfer-pytorch's EMA: the weights (1 − decay)·decayᵏ are divided by
    their sum, so the average is an average from the first step. Kept on the host: one multiply-add of the
    image per evaluation.
    """
    total = (1.0 - decay) * start.astype(np.float64)  # Σ weight · image
    weight = 1.0 - decay  # Σ weight
    try:
        for index, losses, image in steps:
            if image is not None:
                total = decay * total + (1.0 - decay) * image
                weight = decay * weight + (1.0 - decay)
            yield index, losses, (total / weight).astype(np.float32) if index in previews else None
    finally:
        steps.close()
    average = (total / weight).astype(np.float32)
    values = fn.parts(tf.constant(average), objective.targets, objective.coefficients).numpy()
    return average, Losses(*(float(x) for x in values))


def _adam(
    fn: Compiled,
    objective: Objective,
    start: np.ndarray,
    iterations: int,
    params: StyleParams,
    previews: frozenset[int],
    cancel: Callable[[], bool],
    steps_per_call: int | None,
    converged: Callable[[], bool],
) -> Steps:
    """`adam` without the averaging; previews show the image after the step."""
    image = tf.constant(start)
    zeros = tf.zeros_like(image)
    state: AdamState = (image, zeros, zeros, tf.constant(0.0), image, tf.fill((4,), np.inf))
    hyper = tf.constant([params.learning_rate, params.beta1, params.beta2, params.epsilon], tf.float32)
    per_call = steps_per_call or 1
    adaptive = steps_per_call is None and bool(tf.config.list_logical_devices("GPU"))
    done = 0
    while done < iterations and not converged():
        if cancel():
            raise Cancelled
        n = min(per_call, iterations - done, *(p - done for p in previews if p > done))
        began = time.perf_counter()
        if n == 1:
            state, values = fn.adam_step(state, objective.targets, objective.coefficients, hyper)
            rows = values.numpy()[np.newaxis]
        else:
            state, history = fn.adam_steps(
                state, tf.constant(n), objective.targets, objective.coefficients, hyper
            )
            rows = history.numpy()  # (n, 4): the losses of the images the n steps started from
        if adaptive and done > 0:  # the first call also traced: not a fair timing
            seconds = time.perf_counter() - began
            per_call = max(1, min(MAX_STEPS_PER_CALL, int(n * SECONDS_PER_CALL / max(seconds, 1e-6))))
        for row in rows:
            done += 1
            yield done, Losses(*(float(x) for x in row)), state[0].numpy() if done in previews else None
    # Each step scores the image it started from; score the final image too and keep the best.
    final = fn.parts(state[0], objective.targets, objective.coefficients).numpy()
    best = state[5].numpy()
    if not np.isfinite(best[3]) or final[3] <= best[3]:
        return state[0].numpy(), Losses(*(float(x) for x in final))
    return state[4].numpy(), Losses(*(float(x) for x in best))
