"""How much memory a painting needs, and the largest one that fits in what a machine has free.

The peak is reached in the loss-and-gradient pass at the finest scale: VGG-19's activations up to relu5_1
kept for the backward pass, their gradients, and L-BFGS's history, all linear in the pixels, plus a part
that is not (the traced functions, the style's targets, the images in and out). Both are fitted to a
worker's peak resident memory above its idle footprint on the real weights, and rounded up so that no
measured job exceeds them (the figures: BENCHMARKS.md, "Big paintings").
"""

from __future__ import annotations

import math
from pathlib import Path

# Bytes per optimised pixel (margin included) at the peak, by the convolutions' number format.
PER_PIXEL = {"float32": 3_000, "bfloat16": 2_300}
# Bytes a job needs besides: traced functions (one set per number of coarser levels), the style's targets,
# images in and out.
FIXED = 900 * 2**20
# Keep this share of the free memory for everything else on the machine.
HEADROOM = 0.85
# Below this long side a painting is not worth making: refuse instead.
LEAST_SIDE = 256


def estimate(height: int, width: int, dtype: str) -> int:
    """Peak bytes a job optimising an (height × width) canvas needs above an idle worker's footprint."""
    return FIXED + PER_PIXEL[dtype] * height * width


def fitting_side(height: int, width: int, margin: int, dtype: str, free: int) -> int:
    """The largest long side, at most max(height, width), whose painting fits in `free` bytes.

    `height` × `width` is the painting the job asks for and `margin` the frame optimised around it; the
    answer keeps the aspect. Less than `LEAST_SIDE` means: refuse.
    """
    budget = free * HEADROOM - FIXED
    long_side = max(height, width)
    if budget <= 0:
        return 0
    if estimate(height + 2 * margin, width + 2 * margin, dtype) <= free * HEADROOM:
        return long_side
    # (h·s + 2m)(w·s + 2m) ≤ budget / per-pixel, for the scale s ≤ 1: the positive root of a quadratic.
    a, b = height * width, 2 * margin * (height + width)
    c = 4 * margin * margin - budget / PER_PIXEL[dtype]
    scale = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    return max(0, math.floor(long_side * scale))


def free_memory(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """Bytes the machine can give a job now (Linux's MemAvailable); None where that is unknown.

    On a GPU the device's memory is the limit, which TensorFlow does not report; there a painting too big
    fails with "out of memory" instead.
    """
    try:
        for line in meminfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key == "MemAvailable":
                return int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
