"""Deadlines that grow with the machine: `scaled(seconds)` for every wait on CPU-bound work.

The tests' deadlines on painting, worker start-up and bot restarts were set on the development machine
(2 cores). A machine 2–3× slower, or one whose cores are shared with other work, would fail those waits
although nothing is wrong. So the session times a small fixed CPU workload once, like the work the tests
wait on (numpy/BLAS arithmetic as in the engine's convolutions, and pure-Python work as in the bot, the
event loop and TensorFlow's tracing), and compares it with what the development machine takes. The
workload runs on one core, while the engine's TensorFlow and the bot's processes spread over all of
them, so fewer cores count as well:

    slowdown = min(MAX_SLOWDOWN, max(1, measured / REFERENCE_SECONDS * REFERENCE_CORES / cores))

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

# Seconds of one `_workload()` on the development machine with nothing else running, and its cores.
REFERENCE_SECONDS = 0.025
REFERENCE_CORES = 2
# The most a measurement may stretch deadlines: on a machine busy with other work a calibration can run
# 10× slower, which would turn a hung test's 2-minute wait into 20 minutes. The override is not capped.
MAX_SLOWDOWN = 5.0
ENV_OVERRIDE = "NEURAL_STYLE_TEST_SLOWDOWN"
_ROUNDS = 7


def _workload() -> float:
    """A fixed mix of small numpy products and interpreted Python; returns a value so nothing is skipped.

    Single-threaded on purpose: large BLAS products spread over threads that spin while they wait for
    each other, and on a shared machine they measured 35× slower where Python code measured 1.2× slower.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((48, 48), dtype=np.float32)
    for _ in range(1500):
        a = np.tanh(a @ a.T * 0.01)
    total = 0
    for i in range(400_000):
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
    per_core = measure() / REFERENCE_SECONDS
    return min(MAX_SLOWDOWN, max(1.0, per_core * REFERENCE_CORES / cores()))


def cores() -> int:
    """The cores this process may run on (a CPU affinity mask, as `taskset` sets, counts)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def scaled(seconds: float) -> float:
    """A deadline of `seconds` on the development machine, stretched for this one."""
    return seconds * slowdown()
