"""The precision setting: what `auto` picks (measured on a CPU, cached per machine), and what each setting
runs the network in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from engine import precision
from engine.objective import Objective
from engine.pace import settle_precision
from engine.params import StyleParams
from engine.precision import (
    Choice,
    choose,
    cpu_flags,
    cpu_model,
    gpu_choice,
    read_cached,
    resolve,
    write_cached,
)
from engine.vgg import VGG19


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder of this test's own, and no decision settled in this process before it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(precision, "_settled", None)  # restored afterwards: other tests keep theirs
    return tmp_path / "neural-style-bot" / precision.CACHE_FILE


@pytest.mark.parametrize(
    ("float32", "bfloat16", "expected"),
    [
        (1.486, 0.799, "bfloat16"),  # AVX512-BF16 without AMX: 0.54× (the AMD EPYC)
        (1.0, 0.8, "bfloat16"),  # just clearly faster
        (1.0, 0.85, "float32"),  # within the noise of a shared machine: not worth rounding for
        (0.19, 0.39, "float32"),  # AVX2 only: bfloat16 converted in software
    ],
)
def test_auto_keeps_bfloat16_only_where_it_measured_clearly_faster(
    float32: float, bfloat16: float, expected: str
) -> None:
    choice = choose(float32, bfloat16)
    assert (choice.dtype, choice.float32, choice.bfloat16) == (expected, float32, bfloat16)
    assert f"bfloat16 {bfloat16:.3f} s, float32 {float32:.3f} s" in choice.why


@pytest.mark.parametrize(
    ("gpus", "expected"),
    [
        ([(8, 0)], "bfloat16"),  # an A100
        ([(8, 6), (9, 0)], "bfloat16"),
        ([(7, 5)], "float32"),  # a T4 emulates it
        ([(8, 0), (7, 0)], "float32"),  # one setting for every worker: all GPUs must have it
        ([None], "float32"),
    ],
)
def test_on_gpus_the_compute_capability_decides(gpus: list[tuple[int, int] | None], expected: str) -> None:
    assert gpu_choice(gpus).dtype == expected


def test_cpu_flags_and_model_are_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx512_bf16 amx_bf16\n\n"
        "processor\t: 1\nflags\t\t: fpu sse2 avx512_bf16 amx_bf16\n"
    )

    assert cpu_flags(cpuinfo) == frozenset({"fpu", "sse2", "avx512_bf16", "amx_bf16"})
    assert cpu_model(cpuinfo) == "Some CPU"
    assert cpu_flags(tmp_path / "absent") == frozenset()
    assert cpu_model(tmp_path / "absent") == "unknown CPU"


def test_a_decision_is_cached_per_machine_and_network(tmp_path: Path) -> None:
    path = tmp_path / "precision.json"
    write_cached("cpu A", Choice("bfloat16", "measured", 1.0, 0.5), 20_000_000, path)
    write_cached("cpu A", Choice("float32", "measured", 0.1, 0.1), 30_000, path)  # a narrow test network
    write_cached("cpu B", Choice("float32", "measured", 0.2, 0.4), 20_000_000, path)

    assert read_cached("cpu A", 30_000, path) == Choice("float32", "measured (cached)", 0.1, 0.1)
    assert read_cached("cpu B", 20_000_000, path) == Choice("float32", "measured (cached)", 0.2, 0.4)
    # Without a network at hand: the largest measured on the machine, the real one.
    assert read_cached("cpu A", None, path) == Choice("bfloat16", "measured (cached)", 1.0, 0.5)
    assert read_cached("cpu A", 50_000, path) is None  # other weights: measured again
    assert read_cached("cpu C", None, path) is None
    path.write_text("{not json")
    assert read_cached("cpu A", None, path) is None  # a damaged file is measured again, never an error


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="on a GPU the capability decides")
def test_a_worker_measures_once_and_later_ones_read_the_cache(network: VGG19, cache: Path) -> None:
    assert precision.current().dtype == "float32"  # nothing measured yet: float32, and nothing written
    assert not cache.exists()

    measured = settle_precision(network)

    assert measured.float32 is not None
    assert measured.bfloat16 is not None
    assert min(measured.float32, measured.bfloat16) > 0
    assert measured == choose(measured.float32, measured.bfloat16)
    assert resolve("auto") == (tf.bfloat16 if measured.dtype == "bfloat16" else tf.float32)
    # Another process (a restart, the next worker) reads it instead of measuring again.
    precision._settled = None
    again = precision.settle(None)
    assert again == Choice(measured.dtype, f"{measured.why} (cached)", measured.float32, measured.bfloat16)
    # The operator deletes the file: the next worker measures again.
    cache.unlink()
    precision._settled = None
    assert precision.settle(None).why == "not measured on this machine yet"


def test_settings_resolve_to_dtypes() -> None:
    assert resolve("float32") == tf.float32
    assert resolve("bfloat16") == tf.bfloat16
    assert resolve("auto") == (tf.bfloat16 if precision.current().dtype == "bfloat16" else tf.float32)
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
