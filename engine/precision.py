"""Which number format the convolutions run in: bfloat16 where the hardware makes it pay.

Convolutions and activations in bfloat16 are several times faster than float32 on a CPU with AMX-BF16
and give the same picture (BENCHMARKS.md); without AMX they are slower, so `auto` asks the hardware.
The image, Grams, losses and optimiser state stay float32 whatever is chosen.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path

import tensorflow as tf

logger = logging.getLogger(__name__)

PRECISIONS: tuple[str, ...] = ("auto", "float32", "bfloat16")

# CPU flags (Linux /proc/cpuinfo) under which oneDNN's bfloat16 convolutions beat float32: AMX's tile
# units. AVX512-BF16's dot products alone leave a bfloat16 step slower than float32's (BENCHMARKS.md),
# so there `auto` keeps float32 and `bfloat16` must be asked for.
CPU_FLAGS = ("amx_bf16",)
# GPUs with bfloat16 tensor cores: Ampere (compute capability 8.0) and newer.
GPU_CAPABILITY = (8, 0)


def resolve(precision: str) -> tf.DType:
    """The dtype the convolutions run in: `precision` itself, or for `auto` what this machine does fast."""
    if precision == "float32":
        return tf.float32
    if precision == "bfloat16":
        return tf.bfloat16
    if precision != "auto":
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    return tf.bfloat16 if native_bfloat16() else tf.float32


@functools.cache
def native_bfloat16() -> bool:
    """True where the device the work runs on computes bfloat16 natively (asked once per process)."""
    gpus = tf.config.list_physical_devices("GPU")
    capabilities = [tf.config.experimental.get_device_details(g).get("compute_capability") for g in gpus]
    flags = cpu_flags()
    native = decide(flags, capabilities)
    logger.info(
        "bfloat16 %s (GPU compute capabilities %s, CPU flags %s)",
        "on" if native else "off",
        capabilities,
        sorted(flags & set(CPU_FLAGS)),
    )
    return native


def decide(flags: frozenset[str], gpus: Sequence[tuple[int, int] | None]) -> bool:
    """bfloat16 or not, from the CPU's flags and each GPU's compute capability (None: unknown).

    With GPUs the work runs there, so they decide, all of them: one worker per GPU shares the setting.
    """
    if gpus:
        return all(c is not None and tuple(c) >= GPU_CAPABILITY for c in gpus)
    return any(flag in flags for flag in CPU_FLAGS)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags as Linux lists them; empty where there is no /proc/cpuinfo (then float32)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()
