"""The canonical weights form: the `.npz` round trip and its checksum."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.weights import (
    CONV_LAYERS,
    VGGWeights,
    WeightsError,
    synthetic,
)
from tests.engine.weight_files import assert_same_weights


@pytest.fixture
def saved(tmp_path: Path) -> tuple[VGGWeights, Path]:
    weights = synthetic(channels=4, source="test:synthetic")
    path = tmp_path / "w.npz"
    weights.save(path)
    return weights, path


def _member_data_offset(path: Path, member: str) -> int:
    """Where a stored (uncompressed) zip member's bytes begin in the file."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    header = path.read_bytes()[info.header_offset : info.header_offset + 30]
    name_length, extra_length = (
        int.from_bytes(header[26:28], "little"),
        int.from_bytes(header[28:30], "little"),
    )
    return info.header_offset + 30 + name_length + extra_length


def test_save_load_round_trip(saved: tuple[VGGWeights, Path]) -> None:
    weights, path = saved
    loaded = VGGWeights.load(path)
    assert_same_weights(loaded, weights)
    assert loaded.source == "test:synthetic"
    assert [loaded.channels(layer) for layer in ("relu1_1", "pool2", "relu5_4")] == [4, 8, 32]


@pytest.mark.parametrize("member", ["mean_pixel.npy", "conv1_1/kernel.npy", "conv5_4/bias.npy"])
def test_flipped_bytes_are_refused(saved: tuple[VGGWeights, Path], member: str) -> None:
    _, path = saved
    data = bytearray(path.read_bytes())
    start = _member_data_offset(path, member) + 130  # past the .npy header, inside the numbers
    data[start : start + 4] = bytes(b ^ 0xFF for b in data[start : start + 4])
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="not a valid weights file"):
        VGGWeights.load(path)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.99])
def test_truncated_file_is_refused(saved: tuple[VGGWeights, Path], keep: float) -> None:
    _, path = saved
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(WeightsError):
        VGGWeights.load(path)


def test_rewritten_array_is_refused_by_checksum(saved: tuple[VGGWeights, Path], tmp_path: Path) -> None:
    _, path = saved
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["conv3_1/kernel"] = arrays["conv3_1/kernel"] * 1.01  # a well-formed file with altered numbers
    tampered = tmp_path / "tampered.npz"
    np.savez(tampered, **arrays)
    with pytest.raises(WeightsError, match="checksum mismatch"):
        VGGWeights.load(tampered)


def test_other_format_version_is_refused(saved: tuple[VGGWeights, Path], tmp_path: Path) -> None:
    _, path = saved
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    meta = json.loads(bytes(arrays["meta"]).decode()) | {"format": 1}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    old = tmp_path / "old.npz"
    np.savez(old, **arrays)
    with pytest.raises(WeightsError, match="unsupported weights format 1"):
        VGGWeights.load(old)


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        VGGWeights.load(tmp_path / "nothing.npz")


def test_broken_layer_chain_is_refused() -> None:
    weights = synthetic(channels=4)
    kernels = dict(weights.kernels)
    kernels["conv2_1"] = np.zeros((3, 3, 5, 8), dtype=np.float32)
    with pytest.raises(WeightsError, match="conv2_1"):
        VGGWeights(kernels=kernels, biases=weights.biases, mean_pixel=weights.mean_pixel, source="x")


def test_synthetic_has_every_conv_layer() -> None:
    weights = synthetic(channels=2)
    assert list(weights.kernels) == list(CONV_LAYERS)
    assert weights.kernels["conv5_4"].shape == (3, 3, 16, 16)
