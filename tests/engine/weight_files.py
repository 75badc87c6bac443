"""Write weights as the original files the loaders read: legacy `torch.save` and both `.mat` layouts.

Each writer is the inverse of its loader, so loading what it wrote must give the same weights back.
torch is never installed: the legacy pickle is written with stand-ins that emit torch's global names.
"""

from __future__ import annotations

import collections
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.io

from engine.weights import CONV_LAYERS, DECODER_LAYERS, LAYERS, DecoderWeights, VGGWeights
from engine.weights.torch_legacy import (
    BGR_MEAN,
    DECODER_INDICES,
    MAGIC_NUMBER,
    NORMALISED_VGG19_INDICES,
    PROTOCOL_VERSION,
)

_STORAGE_KINDS = {
    np.dtype("<f4"): "FloatStorage",
    np.dtype("<f8"): "DoubleStorage",
    np.dtype("<i8"): "LongStorage",
}


@dataclass(frozen=True)
class Global:
    """A pickle GLOBAL for a name that need not exist here (`torch.FloatStorage`, `os.system`)."""

    module: str
    name: str


@dataclass(frozen=True)
class Call:
    """A pickle REDUCE: `func(*args)` at load time."""

    func: Global
    args: tuple[Any, ...]


@dataclass(frozen=True)
class PersistentId:
    """A pickle BINPERSID: the loader's `persistent_load(pid)` supplies the object."""

    pid: tuple[Any, ...]


class _Pickler(pickle._Pickler):  # the Python pickler, whose `save` can be extended per object
    def save(self, obj: Any, save_persistent_id: bool = True) -> None:
        if isinstance(obj, Global):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        elif isinstance(obj, Call):
            self.save(obj.func)
            self.save(obj.args)
            self.write(pickle.REDUCE)
        elif isinstance(obj, PersistentId):
            self.save(obj.pid)
            self.write(pickle.BINPERSID)
        else:
            super().save(obj, save_persistent_id)


def torch_state_dict(weights: VGGWeights) -> dict[str, np.ndarray]:
    """The normalised VGG-19 state dict that converts to `weights`: BGR layer 0, (out, in, kH, kW) kernels."""
    tensors = {
        "0.weight": (255.0 * np.eye(3, dtype=np.float32)[::-1]).reshape(3, 3, 1, 1),
        "0.bias": -np.array(BGR_MEAN, dtype=np.float32),
    }
    for name, index in NORMALISED_VGG19_INDICES.items():
        weight = weights.kernels[name].transpose(3, 2, 0, 1)  # (kH, kW, in, out) -> (out, in, kH, kW)
        tensors[f"{index}.weight"] = weight[:, ::-1] if name == "conv1_1" else weight
        tensors[f"{index}.bias"] = weights.biases[name]
    return {key: np.ascontiguousarray(value) for key, value in tensors.items()}


def decoder_state_dict(decoder: DecoderWeights) -> dict[str, np.ndarray]:
    """The AdaIN decoder's state dict that converts to `decoder`: (out, in, kH, kW) kernels at its indices."""
    tensors: dict[str, np.ndarray] = {}
    for name, index in DECODER_INDICES.items():
        tensors[f"{index}.weight"] = np.ascontiguousarray(decoder.kernels[name].transpose(3, 2, 0, 1))
        tensors[f"{index}.bias"] = decoder.biases[name]
    return tensors


def write_torch_legacy(
    path: Path,
    tensors: Mapping[str, Any],
    *,
    order: Literal["C", "F"] = "C",
    sys_info: Mapping[str, Any] | None = None,
    tail: bytes = b"",
) -> None:
    """Write `tensors` as torch < 1.6 did; values may be arrays or any `Global`/`Call` to plant in the pickle.

    `order="F"` stores every array column-major with matching strides, to exercise non-contiguous tensors.
    """
    state: collections.OrderedDict[str, Any] = collections.OrderedDict()
    blocks: list[tuple[str, np.ndarray]] = []
    for name, value in tensors.items():
        if not isinstance(value, np.ndarray):
            state[name] = value
            continue
        array = value.astype(value.dtype.newbyteorder("<"))
        key = str(len(blocks))
        flat = array.ravel(order=order)
        strides = tuple(
            s // array.itemsize for s in (array if order == "C" else np.asfortranarray(array)).strides
        )
        storage = PersistentId(
            ("storage", Global("torch", _STORAGE_KINDS[array.dtype]), key, "cpu", flat.size)
        )
        state[name] = Call(
            Global("torch._utils", "_rebuild_tensor_v2"),
            (storage, 0, array.shape, strides, False, collections.OrderedDict()),
        )
        blocks.append((key, flat))
    info = sys_info or {
        "protocol_version": PROTOCOL_VERSION,
        "little_endian": True,
        "type_sizes": {"long": 8},
    }
    with path.open("wb") as f:
        for header in (MAGIC_NUMBER, PROTOCOL_VERSION, dict(info)):
            pickle.dump(header, f, protocol=2)
        _Pickler(f, protocol=2).dump(state)
        pickle.dump([key for key, _ in blocks], f, protocol=2)
        for _, flat in blocks:
            f.write(flat.size.to_bytes(8, "little"))
            f.write(flat.tobytes())
        f.write(tail)


def write_mat_old(weights: VGGWeights, path: Path) -> None:
    """The old MatConvNet layout: top-level `normalization`; each layer a struct with `weights` first."""
    layers = np.empty((1, len(LAYERS) + 2), dtype=object)
    for i, name in enumerate(LAYERS):
        if name in CONV_LAYERS:
            layers[0, i] = {
                "weights": _cell(_matconvnet_kernel(weights, name), weights.biases[name].reshape(1, -1)),
                "pad": np.ones((1, 4)),
                "type": "conv",
                "name": name,
                "stride": np.ones((1, 2)),
            }
        else:
            layers[0, i] = {"type": name[:4], "name": name}
    layers[0, -2] = {"type": "conv", "name": "fc6"}  # the real file goes on to the classifier
    layers[0, -1] = {"type": "softmax", "name": "prob"}
    normalization = {
        "averageImage": _average_image(weights),
        "keepAspect": 1,
        "imageSize": np.array([[224, 224]]),
    }
    scipy.io.savemat(path, {"layers": layers, "normalization": normalization, "classes": {"name": "x"}})


def write_mat_new(weights: VGGWeights, path: Path) -> None:
    """The new layout: `meta.normalization.averageImage` layers lead with `name`, `type`, `weights`."""
    layers = np.empty((1, len(LAYERS)), dtype=object)
    for i, name in enumerate(LAYERS):
        conv = name in CONV_LAYERS
        layers[0, i] = {
            "name": name,
            "type": "conv" if conv else name[:4],
            "weights": _cell(_matconvnet_kernel(weights, name), weights.biases[name].reshape(-1, 1))
            if conv
            else np.empty((1, 0), dtype=object),
            "size": np.array([[3, 3, 1, 1]]),
            "precious": 0,
        }
    # averageImage third, where anishathalye's positional indexing ([0][0][0][0][2][0][0]) expects it.
    normalization = {
        "imageSize": np.array([[224, 224, 3]]),
        "border": np.array([[32, 32]]),
        "averageImage": weights.mean_pixel.astype(np.float32).reshape(1, 1, 3),
        "keepAspect": 1,
        "interpolation": "bilinear",
    }
    meta = {"inputs": {"name": "input"}, "classes": {"name": "x"}, "normalization": normalization}
    scipy.io.savemat(path, {"layers": layers, "meta": meta})


def _cell(*values: np.ndarray) -> np.ndarray:
    cell = np.empty((1, len(values)), dtype=object)
    for i, value in enumerate(values):
        cell[0, i] = value
    return cell


def _matconvnet_kernel(weights: VGGWeights, name: str) -> np.ndarray:
    return np.ascontiguousarray(weights.kernels[name].transpose(1, 0, 2, 3))  # -> [width, height, in, out]


def _average_image(weights: VGGWeights) -> np.ndarray:
    """A (4, 4, 3) image whose per-channel mean is the mean pixel (a checkerboard of ±10 around it)."""
    checker = np.indices((4, 4)).sum(axis=0) % 2 * 20.0 - 10.0
    image: np.ndarray = (weights.mean_pixel.astype(np.float64) + checker[:, :, None]).astype(np.float32)
    return image


def assert_same_weights(actual: VGGWeights, expected: VGGWeights) -> None:
    """Every kernel and bias equal to the bit; the mean pixel equal to float32 rounding."""
    assert list(actual.kernels) == list(expected.kernels) == list(CONV_LAYERS)
    for name in CONV_LAYERS:
        np.testing.assert_array_equal(actual.kernels[name], expected.kernels[name], err_msg=name)
        np.testing.assert_array_equal(actual.biases[name], expected.biases[name], err_msg=name)
        assert actual.kernels[name].dtype == actual.biases[name].dtype == np.float32
    np.testing.assert_allclose(actual.mean_pixel, expected.mean_pixel, rtol=1e-6)


def assert_same_decoder(actual: DecoderWeights, expected: DecoderWeights) -> None:
    """Every kernel and bias equal to the bit."""
    assert list(actual.kernels) == list(expected.kernels) == list(DECODER_LAYERS)
    for name in DECODER_LAYERS:
        np.testing.assert_array_equal(actual.kernels[name], expected.kernels[name], err_msg=name)
        np.testing.assert_array_equal(actual.biases[name], expected.biases[name], err_msg=name)
        assert actual.kernels[name].dtype == actual.biases[name].dtype == np.float32
