"""The MatConvNet loader on synthetic `.mat` files in both layouts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from engine.weights import CONV_LAYERS, LAYERS, VGGWeights, WeightsError, synthetic
from engine.weights.matconvnet import read_mat
from tests.engine.weight_files import assert_same_weights, write_mat_new, write_mat_old

WRITERS: dict[str, Callable[[VGGWeights, Path], None]] = {"old": write_mat_old, "new": write_mat_new}


@pytest.mark.parametrize("layout", WRITERS)
def test_reads_both_layouts(tmp_path: Path, layout: str) -> None:
    weights = synthetic(channels=4)
    path = tmp_path / "vgg.mat"
    WRITERS[layout](weights, path)
    loaded = read_mat(path)
    assert_same_weights(loaded, weights)
    assert loaded.source == "matconvnet:vgg.mat"


@pytest.mark.parametrize("layout", WRITERS)
def test_files_have_the_nesting_anishathalye_indexes(tmp_path: Path, layout: str) -> None:
    """Read positionally, as anishathalye/neural-style's vgg.py does, the files give the same numbers."""
    weights = synthetic(channels=4)
    path = tmp_path / "vgg.mat"
    WRITERS[layout](weights, path)
    data = scipy.io.loadmat(path)
    if layout == "old":
        mean_pixel = np.mean(data["normalization"][0][0][0], axis=(0, 1))
    else:
        mean_pixel = data["meta"]["normalization"][0][0][0][0][2][0][0]
    np.testing.assert_allclose(mean_pixel, weights.mean_pixel, rtol=1e-6)
    layers = data["layers"][0]
    for i, name in enumerate(LAYERS):
        if name in CONV_LAYERS:
            kernel, bias = layers[i][0][0][0][0] if layout == "old" else layers[i][0][0][2][0]
            np.testing.assert_array_equal(np.transpose(kernel, (1, 0, 2, 3)), weights.kernels[name])
            np.testing.assert_array_equal(bias.reshape(-1), weights.biases[name])


def _rewrite(path: Path, change: Callable[[dict[str, np.ndarray]], None]) -> None:
    data = scipy.io.loadmat(path)
    change(data)
    scipy.io.savemat(path, {key: value for key, value in data.items() if not key.startswith("__")})


def test_misnamed_layer_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vgg.mat"
    write_mat_new(synthetic(channels=4), path)

    def swap(data: dict[str, np.ndarray]) -> None:
        data["layers"][0, 0], data["layers"][0, 2] = data["layers"][0, 2], data["layers"][0, 0]

    _rewrite(path, swap)
    with pytest.raises(WeightsError, match="found layer 'conv1_2' where 'conv1_1' belongs"):
        read_mat(path)


def test_truncated_network_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vgg.mat"
    write_mat_old(synthetic(channels=4), path)

    def truncate(data: dict[str, np.ndarray]) -> None:
        data["layers"] = data["layers"][:, :20]

    _rewrite(path, truncate)
    with pytest.raises(WeightsError, match="at least 36 layers"):
        read_mat(path)


def test_file_without_normalization_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vgg.mat"
    write_mat_old(synthetic(channels=4), path)

    def drop(data: dict[str, np.ndarray]) -> None:
        del data["normalization"]

    _rewrite(path, drop)
    with pytest.raises(WeightsError, match="neither `normalization` nor `meta`"):
        read_mat(path)


def test_not_a_mat_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vgg.mat"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(WeightsError, match="not a MATLAB file"):
        read_mat(path)
