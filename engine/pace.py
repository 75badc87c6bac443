"""How fast this machine paints: seconds per iteration, timed through `iterate` as a job runs it.

A worker calls `probe` before it takes jobs (engine.workers.runner): it settles what `auto` precision
means here (engine.precision: both formats timed at 256 px unless a decision is cached), then times a few
iterations of the job it was given at `PROBE_SIDE` on a synthetic picture, scaled to the unit's size.
That pace, in seconds per unit of work (engine.budget), gives the wait estimates before any job has
finished and the size a host paints within a time budget.
"""

from __future__ import annotations

import logging
import statistics
import time
from typing import cast

import numpy as np
import tensorflow as tf

from engine import precision
from engine.budget import REFERENCE_SIZE
from engine.compiled import compiled
from engine.descent import LBFGS_WARMUP
from engine.objective import Objective
from engine.params import Precision, StyleParams
from engine.stylize import iterate
from engine.vgg import VGG19

logger = logging.getLogger(__name__)

# The probe's long side: half the unit's, so a worker's start spends a quarter of the time on it. An
# iteration's time grows with the canvas's pixels (BENCHMARKS.md, engine speed: 256 against 512 px took
# 3.84× for 4× the pixels), so the unit's time is the probe's scaled by the two canvases' pixels.
PROBE_SIDE = REFERENCE_SIZE // 2
# Iterations timed after the untimed first ones. Three of the bot's L-BFGS evaluations at 512 px are a
# few seconds on a CPU; their median is steady to a few per cent.
TIMED = 3


def probe(network: VGG19, params: StyleParams) -> tuple[float, precision.Choice]:
    """Seconds per iteration of a job like `params` at the unit's size (timed at `PROBE_SIDE`), and what
    `auto` precision means here (measured first when `params` ask for `auto`)."""
    choice = settle_precision(network) if params.precision == "auto" else None
    seconds = seconds_per_iteration(network, params, PROBE_SIDE) * canvas_ratio(params.margin)
    if choice is None:
        choice = precision.Choice(params.precision, "as configured")
    return seconds, choice


def canvas_ratio(margin: int) -> float:
    """The unit's canvas pixels over the probe's: 4:3 pictures framed by `margin` on every side."""

    def canvas(side: int) -> int:
        return (side + 2 * margin) * (side * 3 // 4 + 2 * margin)

    return canvas(REFERENCE_SIZE) / canvas(PROBE_SIDE)


def settle_precision(network: VGG19) -> precision.Choice:
    """What `auto` means on this machine: cached, or measured now with `network` (see engine.precision)."""

    def measure() -> tuple[float, float]:
        content, style = _pictures(precision.MEASURE_SIDE)
        float32, first = seconds_per_step(network, content, style, "float32")
        # Where bfloat16 is emulated a step takes many times float32's, and its first call (tracing
        # aside, which costs as much in either format) already says so: its slowest hosts stop there.
        tracing = max(0.0, first - float32)
        bfloat16, _ = seconds_per_step(network, content, style, "bfloat16", (2 * float32, tracing))
        return float32, bfloat16

    size = sum(int(np.prod(kernel.shape)) for kernel in network.kernels.values())
    return precision.settle(measure, size)


def seconds_per_step(
    network: VGG19,
    content: np.ndarray,
    style: np.ndarray,
    dtype: str,
    enough: tuple[float, float] | None = None,
    timed: int = TIMED,
) -> tuple[float, float]:
    """The median seconds of `timed` calls of the compiled loss and gradient (one L-BFGS evaluation) in
    `dtype` after a first call, and that first call's seconds (tracing included).

    With `enough` = (seconds, tracing), it stops at the first call that took longer than `seconds`, the
    first call's `tracing` aside, and returns that call's time.
    """
    params = StyleParams(optimizer="lbfgs", precision=cast(Precision, dtype))
    objective = Objective(network, content, [style], params)
    fn = compiled(objective)
    image = tf.constant(network.preprocess(content))
    times: list[float] = []
    for call in range(timed + 1):
        began = time.perf_counter()
        fn.loss_and_grad(image, objective.targets, objective.coefficients)[0].numpy()
        times.append(time.perf_counter() - began - (enough[1] if enough and call == 0 else 0.0))
        if enough is not None and times[-1] > enough[0]:
            return times[-1], times[0]
    return statistics.median(times[1:]), times[0]


def seconds_per_iteration(network: VGG19, params: StyleParams, side: int, timed: int = TIMED) -> float:
    """The median seconds of `timed` iterations of `params`' optimisation at long side `side`, on a
    synthetic 4:3 picture, after the untimed first ones (tracing, and L-BFGS's Adam warm-up)."""
    skip = LBFGS_WARMUP + 1 if params.optimizer == "lbfgs" else 2
    run = params.with_overrides(
        iterations=skip + timed + 1,
        max_size=side,
        multiscale=False,
        initial="content",
        preview_every=0,
        seed=0,
    )
    content, style = _pictures(side)
    times: list[float] = []
    began = time.perf_counter()
    for step in iterate(network, content, [style], run):
        now = time.perf_counter()
        if step.iteration > skip and step.iteration < step.total:
            times.append(now - began)
        began = now
    # The last iteration also scores and crops the result; the one before it is as a job's.
    return statistics.median(times or [time.perf_counter() - began])


def _pictures(side: int) -> tuple[np.ndarray, np.ndarray]:
    """A smooth landscape content (side × 3/4 side) and a noisy square style, (H, W, 3) float32 0..255."""
    rng = np.random.default_rng(0)
    height = side * 3 // 4
    coarse = rng.uniform(0, 255, (8, 8, 3))
    rows = np.linspace(0, 7, height).astype(int)
    cols = np.linspace(0, 7, side).astype(int)
    content = coarse[rows][:, cols].astype(np.float32)
    style = rng.uniform(0, 255, (side // 2, side // 2, 3)).astype(np.float32)
    return content, style
