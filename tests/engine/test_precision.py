"""The precision setting: what `auto` picks, and what each setting runs the network in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from engine.objective import Objective
from engine.params import StyleParams
from engine.precision import cpu_flags, decide, native_bfloat16, resolve
from engine.vgg import VGG19

AMX = frozenset({"fpu", "avx512f", "amx_tile", "amx_bf16", "avx512_bf16"})
AVX512_BF16 = frozenset({"fpu", "avx512f", "avx512_bf16"})
OLDER = frozenset({"fpu", "avx2", "avx512f", "avx512_vnni"})


@pytest.mark.parametrize(
    ("flags", "gpus", "expected"),
    [
        (AMX, [], True),
        (AVX512_BF16, [], False),  # measured slower than float32 without AMX (BENCHMARKS.md)
        (OLDER, [], False),
        (frozenset(), [], False),  # no /proc/cpuinfo (not Linux): float32
        (OLDER, [(8, 0)], True),  # an A100 computes bfloat16 whatever the CPU
        (OLDER, [(8, 6), (9, 0)], True),
        (AMX, [(7, 5)], False),  # a T4 emulates it: the GPU does the work, so it decides
        (AMX, [(8, 0), (7, 0)], False),  # one setting for every worker: all GPUs must have it
        (AMX, [None], False),
    ],
)
def test_auto_picks_bfloat16_only_where_the_hardware_makes_it_pay(
    flags: frozenset[str], gpus: list[tuple[int, int] | None], expected: bool
) -> None:
    assert decide(flags, gpus) is expected


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx512_bf16 amx_bf16\n\n"
        "processor\t: 1\nflags\t\t: fpu sse2 avx512_bf16 amx_bf16\n"
    )

    assert cpu_flags(cpuinfo) == frozenset({"fpu", "sse2", "avx512_bf16", "amx_bf16"})
    assert cpu_flags(tmp_path / "absent") == frozenset()


def test_settings_resolve_to_dtypes() -> None:
    assert resolve("float32") == tf.float32
    assert resolve("bfloat16") == tf.bfloat16
    assert resolve("auto") == (tf.bfloat16 if native_bfloat16() else tf.float32)
    with pytest.raises(ValueError, match="precision"):
        resolve("float16")
    with pytest.raises(ValueError, match="precision"):
        StyleParams(precision="half")  # type: ignore[arg-type]


def test_bfloat16_runs_the_convolutions_in_bfloat16_and_returns_float32(network: VGG19) -> None:
    rng = np.random.default_rng(0)
    image = tf.constant(network.preprocess(rng.uniform(0, 255, (24, 32, 3)).astype(np.float32)))

    full = network.features(image, ["relu1_1", "relu3_1"], dtype=tf.float32)
    half = network.features(image, ["relu1_1", "relu3_1"], dtype=tf.bfloat16)

    for layer in ("relu1_1", "relu3_1"):
        assert half[layer].dtype == tf.float32  # Grams and losses are summed in float32
        ours, reference = half[layer].numpy(), full[layer].numpy()
        assert not np.array_equal(ours, reference)  # it did round: bfloat16 keeps 8 bits of mantissa
        scale = np.abs(reference).max()
        np.testing.assert_allclose(ours, reference, rtol=0, atol=0.05 * scale)


def test_objective_in_bfloat16_is_close_and_keeps_its_own_trace(network: VGG19) -> None:
    rng = np.random.default_rng(1)
    content = rng.uniform(0, 255, (24, 32, 3)).astype(np.float32)
    style = rng.uniform(0, 255, (20, 28, 3)).astype(np.float32)
    start = tf.constant(network.preprocess(np.clip(content + rng.normal(0, 30, content.shape), 0, 255)))

    full = Objective(network, content, [style], StyleParams(precision="float32"))
    half = Objective(network, content, [style], StyleParams(precision="bfloat16"))

    assert full.structure != half.structure  # compiled once per format, never mixed up
    assert half.structure.dtype == "bfloat16"
    full_parts = [float(x) for x in full(start)]
    half_parts = [float(x) for x in half(start)]
    assert full_parts != half_parts
    np.testing.assert_allclose(half_parts, full_parts, rtol=0.05)
