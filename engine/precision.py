"""Which number format the convolutions run in: bfloat16 where this machine computes it faster.

On a CPU no list of flags says whether bfloat16 pays. oneDNN runs it fast on AMX tiles, and also with
AVX512-BF16 alone: on a 2-core AMD EPYC with `avx512_bf16` and no AMX (TensorFlow 2.21, the real
weights) an Adam step at 512 px took 0.80 s in bfloat16 against 1.49 s in float32, although an emulation
of that CPU on an AMX Xeon had found it slower. Without either, bfloat16 is converted in software: on a
2-core AMD EPYC with AVX2 only, the real network's loss and gradient at 256 px took 12× as long in
bfloat16 as in float32 (bench/notes/precision-and-pace.md). So on a CPU `auto` measures:
the worker times a few steps of the compiled objective at `MEASURE_SIDE` in each format (engine.pace) and
keeps bfloat16 only if it is clearly faster (`MARGIN`). The decision is cached per machine in
`precision.json` beside the cached weights, keyed by what it depends on (`host_key`); deleting the file
makes the next worker measure again.

A GPU is given no work before its worker runs jobs, so there the compute capability decides: bfloat16
tensor cores from Ampere (8.0) on. The image, Grams, losses and optimiser state stay float32 whatever is
chosen.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import tensorflow as tf

from engine.host.files import write_atomic
from engine.weights.cache import default_cache_path

logger = logging.getLogger(__name__)

PRECISIONS: tuple[str, ...] = ("auto", "float32", "bfloat16")

# GPUs with bfloat16 tensor cores: Ampere (compute capability 8.0) and newer.
GPU_CAPABILITY = (8, 0)
# bfloat16 is kept only where its step takes at most this share of float32's. Steps timed on a shared
# machine vary by about 10 % from one to the next, and bfloat16 rounds the features: it must pay
# clearly. Where it pays it does so by far (0.54× with AVX512-BF16, several times faster with AMX).
MARGIN = 0.8
# The long side the two formats are timed at: small enough for a few seconds in all, big enough that
# the convolutions, not the calls around them, take the time.
MEASURE_SIDE = 256
# The CPU flags oneDNN's bfloat16 and float32 kernels depend on: a decision is measured again if they change.
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")
CACHE_FILE = "precision.json"


@dataclass(frozen=True)
class Choice:
    """What `auto` runs the convolutions in on this machine, and why."""

    dtype: str  # "float32" or "bfloat16"
    why: str  # one line for the log and `neural-style doctor`
    float32: float | None = None  # measured seconds per step in each format (None: not measured)
    bfloat16: float | None = None


_settled: Choice | None = None  # this process's decision, once made or read from the cache


def resolve(precision: str) -> tf.DType:
    """The dtype the convolutions run in: `precision` itself, or for `auto` what this machine does fast."""
    if precision == "float32":
        return tf.float32
    if precision == "bfloat16":
        return tf.bfloat16
    if precision != "auto":
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    return tf.bfloat16 if current().dtype == "bfloat16" else tf.float32


def current() -> Choice:
    """What `auto` means in this process now: the GPUs' rule, else the measured decision (settled here
    or cached by another worker), else float32 until a worker has measured."""
    if _settled is not None:
        return _settled
    return settle(None)


def settle(measure: Callable[[], tuple[float, float]] | None, network: int = 0) -> Choice:
    """Decide what `auto` means in this process, measuring on a CPU if no decision is cached.

    `measure()` times a step of the objective in float32 and in bfloat16 (seconds, in that order); None:
    do not measure, float32 unless a decision is cached. `network`: how many weights the network `measure`
    runs has.
    """
    global _settled
    capabilities = gpu_capabilities()
    if capabilities:
        _settled = gpu_choice(capabilities)
        return _settled
    key = host_key()
    # Decisions are kept per network: a narrow test network is not the real one. A process with no
    # network at hand takes the decision of the largest one measured here, the real network's.
    cached = read_cached(key, network if measure is not None else None)
    if cached is not None:
        _settled = cached
        return cached
    if measure is None:
        return Choice("float32", "not measured on this machine yet")
    choice = choose(*measure())
    write_cached(key, choice, network)
    logger.info("precision auto: %s", choice.why)
    _settled = choice
    return choice


def choose(float32: float, bfloat16: float) -> Choice:
    """bfloat16 if its measured step takes at most `MARGIN` of float32's."""
    ratio = bfloat16 / float32
    faster = ratio <= MARGIN
    why = (
        f"measured at {MEASURE_SIDE} px: bfloat16 {bfloat16:.3f} s, float32 {float32:.3f} s a step "
        f"({ratio:.2f}×; bfloat16 needs ≤ {MARGIN:g}×)"
    )
    return Choice("bfloat16" if faster else "float32", why, float32, bfloat16)


def gpu_choice(capabilities: Sequence[tuple[int, int] | None]) -> Choice:
    """With GPUs the work runs there, so they decide, all of them: one worker per GPU shares the setting."""
    native = all(c is not None and tuple(c) >= GPU_CAPABILITY for c in capabilities)
    listed = ", ".join("unknown" if c is None else f"{c[0]}.{c[1]}" for c in capabilities)
    rule = f"bfloat16 tensor cores from {GPU_CAPABILITY[0]}.{GPU_CAPABILITY[1]}"
    return Choice("bfloat16" if native else "float32", f"GPU compute capability {listed} ({rule})")


def gpu_capabilities() -> list[tuple[int, int] | None]:
    """Each visible GPU's compute capability (None: unknown); empty on a CPU host."""
    gpus = tf.config.list_physical_devices("GPU")
    return [tf.config.experimental.get_device_details(g).get("compute_capability") for g in gpus]


def host_key() -> str:
    """What a CPU decision depends on: the CPU model, its flags that matter, oneDNN's ISA cap and
    TensorFlow's version."""
    flags = sorted(cpu_flags() & set(CPU_FLAGS))
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "")
    return " | ".join([cpu_model(), " ".join(flags), f"isa={isa}", f"tensorflow {tf.__version__}"])


def cache_path() -> Path:
    """Where measured decisions are kept: beside the cached weights (`$XDG_CACHE_HOME/neural-style-bot`)."""
    return default_cache_path().with_name(CACHE_FILE)


def read_cached(key: str, network: int | None = None, path: Path | None = None) -> Choice | None:
    """The decision measured before on the machine `key` with a network of `network` weights (None: the
    largest network measured); None if there is none or the file is unreadable."""
    try:
        entries = json.loads((path or cache_path()).read_text())[key]
        sizes = [int(size) for size in entries] if network is None else [network]
        entry = entries[str(max(sizes))]
        return Choice(entry["dtype"], f"{entry['why']} (cached)", entry["float32"], entry["bfloat16"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_cached(key: str, choice: Choice, network: int = 0, path: Path | None = None) -> None:
    """Keep `choice`, measured with a network of `network` weights on the machine `key`, beside other
    networks' and machines' (a shared home folder); best effort."""
    path = path or cache_path()
    try:
        entries = json.loads(path.read_text())
        entries = entries if isinstance(entries, dict) else {}
    except (OSError, ValueError):
        entries = {}
    machine = entries.get(key)
    machine = machine if isinstance(machine, dict) else {}
    machine[str(network)] = {**asdict(choice), "measured": time.strftime("%Y-%m-%d %H:%M:%S")}
    entries[key] = machine
    try:
        write_atomic(path, json.dumps(entries, indent=1, ensure_ascii=False).encode(), durable=False)
    except OSError as exc:
        logger.warning("precision decision not cached in %s: %s", path, exc)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags as Linux lists them; empty where there is no /proc/cpuinfo."""
    return frozenset(_cpuinfo_field(cpuinfo, "flags").split())


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name as Linux gives it; "unknown CPU" where there is no /proc/cpuinfo."""
    return _cpuinfo_field(cpuinfo, "model name") or "unknown CPU"


def _cpuinfo_field(cpuinfo: Path, name: str) -> str:
    """The first processor's `name` field in /proc/cpuinfo; "" if absent."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return ""
