"""MatConvNet's `imagenet-vgg-verydeep-19.mat`, in either layout it was published in, as `VGGWeights`.

scipy.io.loadmat turns a MATLAB struct into a (1, 1) structured array and a cell array into an object
array; every struct is unwrapped from that box and read by field name, never by position.
Old layout: top-level `normalization.averageImage`; each layer a struct whose `weights` is a {kernel, bias}
cell. New layout: `meta.normalization.averageImage`; each layer a struct with `name`, `type`, `weights`.
Both networks take RGB pixels in 0..255 minus the mean, so no channel reordering is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.weights.canonical import CONV_LAYERS, LAYERS, VGGWeights, WeightsError


def read_mat(path: Path, source: str | None = None) -> VGGWeights:
    """Read conv1_1..conv5_4 and the mean pixel of a MatConvNet VGG-19 `.mat`; refuse anything else."""
    import scipy.io  # only here: importing the weights package stays light for the bot's process

    try:
        data = scipy.io.loadmat(path)
    except FileNotFoundError:
        raise
    except Exception as exc:  # scipy raises ValueError, TypeError or its own errors for non-.mat input
        raise WeightsError(f"{path}: not a MATLAB file ({exc})") from exc
    if "normalization" in data:
        normalization = _struct(data["normalization"], "normalization")
    elif "meta" in data:
        normalization = _struct(_field(_struct(data["meta"], "meta"), "normalization"), "meta.normalization")
    else:
        raise WeightsError(f"{path}: neither `normalization` nor `meta` found; not a MatConvNet model")
    mean_pixel = _mean_pixel(np.asarray(_field(normalization, "averageImage")))

    layers = data.get("layers")
    if not isinstance(layers, np.ndarray) or layers.dtype != object or layers.size < len(LAYERS):
        raise WeightsError(f"{path}: `layers` is not a cell array of at least {len(LAYERS)} layers")
    kernels: dict[str, np.ndarray] = {}
    biases: dict[str, np.ndarray] = {}
    for expected, cell in zip(LAYERS, layers.reshape(-1), strict=False):
        layer = _struct(cell, f"layer {expected}")
        name = _string(_field(layer, "name"))
        if name != expected:
            raise WeightsError(f"{path}: found layer {name!r} where {expected!r} belongs")
        if expected in CONV_LAYERS:
            kernels[name], biases[name] = _conv(_field(layer, "weights"), name)
    return VGGWeights(
        kernels=kernels, biases=biases, mean_pixel=mean_pixel, source=source or f"matconvnet:{path.name}"
    )


def _struct(value: object, what: str) -> np.void:
    """The record of a 1×1 MATLAB struct (loadmat gives a (1, 1) structured array)."""
    if not (isinstance(value, np.ndarray) and value.dtype.names and value.size == 1):
        raise WeightsError(f"{what} is not a MATLAB struct")
    record: np.void = value.reshape(-1)[0]
    return record


def _field(record: np.void, name: str) -> Any:
    """A struct field by name."""
    names = record.dtype.names or ()
    if name not in names:
        raise WeightsError(f"struct has no field {name!r} (fields: {', '.join(names)})")
    return record[name]


def _string(value: object) -> str:
    """A MATLAB char array (loadmat gives a 1-element array of str)."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "U" and value.size == 1:
        return str(value.reshape(-1)[0])
    return repr(value)


def _conv(weights: object, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Kernel (kH, kW, in, out) and bias (out,) from a layer's {kernel, bias} cell."""
    if not (isinstance(weights, np.ndarray) and weights.dtype == object and weights.size == 2):
        raise WeightsError(f"layer {name}: `weights` is not a {{kernel, bias}} cell")
    kernel, bias = weights.reshape(-1)
    if not (isinstance(kernel, np.ndarray) and kernel.ndim == 4 and kernel.dtype.kind == "f"):
        raise WeightsError(f"layer {name}: kernel is not a 4-D float array")
    if not (isinstance(bias, np.ndarray) and bias.dtype.kind == "f"):
        raise WeightsError(f"layer {name}: bias is not a float array")
    # MatConvNet kernels are [width, height, in, out]; TensorFlow wants [height, width, in, out].
    return np.ascontiguousarray(kernel.transpose(1, 0, 2, 3), dtype=np.float32), bias.reshape(-1).astype(
        np.float32
    )


def _mean_pixel(average_image: np.ndarray) -> np.ndarray:
    """The RGB mean pixel from `averageImage`: a whole (H, W, 3) image or just the 3-vector."""
    if average_image.dtype.kind not in "fiu":
        raise WeightsError(f"averageImage holds {average_image.dtype}, not numbers")
    if average_image.size != 3 and not (average_image.ndim == 3 and average_image.shape[2] == 3):
        raise WeightsError(f"averageImage has shape {average_image.shape}, expected (H, W, 3) or 3 values")
    mean: np.ndarray = average_image.astype(np.float64).reshape(-1, 3).mean(axis=0)
    return mean.astype(np.float32)
