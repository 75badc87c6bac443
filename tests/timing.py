"""Deadlines that grow with the machine: `scaled(seconds)` for every wait on CPU-bound work.

The tests' deadlines on painting, worker start-up and bot restarts were set on the development machine
(2 cores). A machine 2–3× slower, or one whose cores are shared with other work, would fail those waits
although nothing is wrong. So the session times a small fixed CPU workload once, like the work the tests
wait on (numpy/BLAS arithmetic as in the engine's convolutions, and pure-Python work as in the bot, the
event loop and TensorFlow's tracing), and compares it with what the development machine takes:

    slowdown = max(1, measured / REFERENCE_SECONDS)

`scaled(s)` is `s * slowdown`. It never shrinks a deadline: a faster machine keeps the margins it had.
Waits that hold on the fake network (a "timeout" fault's hold, PTB's request timeouts) stay as they are:
they measure wall-clock time that does not depend on the CPU.

NEURAL_STYLE_TEST_SLOWDOWN overrides the measured factor (for example `3` on a known-slow CI runner).
"""

from __future__ import annotations

import functools
import os
import statistics
import time

import numpy as np

# Median seconds of one `_workload()` on the development machine (2 cores, nothing else running).
REFERENCE_SECONDS = 0.055
ENV_OVERRIDE = "NEURAL_STYLE_TEST_SLOWDOWN"
_ROUNDS = 7


def _workload() -> float:
    """A fixed mix of small BLAS products and interpreted Python; returns a value so nothing is skipped."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((128, 128), dtype=np.float32)
    for _ in range(600):
        a = np.tanh(a @ a.T * 0.01)
    total = 0
    for i in range(600_000):
        total += i % 7
    return float(a.sum()) + total


def measure() -> float:
    """Median wall-clock seconds of the calibration workload on this machine, now."""
    _workload()  # warm-up: imports, BLAS threads, caches
    times = []
    for _ in range(_ROUNDS):
        start = time.perf_counter()
        _workload()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@functools.cache
def slowdown() -> float:
    """How many times slower than the development machine this one runs CPU-bound work (at least 1)."""
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        return max(1.0, float(override))
    return max(1.0, measure() / REFERENCE_SECONDS)


def scaled(seconds: float) -> float:
    """A deadline of `seconds` on the development machine, stretched for this one."""
    return seconds * slowdown()
