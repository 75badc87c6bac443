"""Reading one given weights file, in any format the engine accepts: for the CLI, the workers and the bot.

VGG-19: the canonical `.npz` (`neural-style weights fetch`), MatConvNet's `.mat`, or the legacy PyTorch
`.pth` of the Gatys-normalised network. The AdaIN decoder: `.npz` or `.pth`. The format is told from the
file's first bytes, not its name (Ray's workers receive the bytes under a fixed name), and every failure
is one `WeightsError` on one line, naming the file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from engine.weights.canonical import DecoderWeights, VGGWeights, WeightsError
from engine.weights.matconvnet import read_mat
from engine.weights.torch_legacy import convert_decoder, convert_normalised_vgg19, read_tensors

# The first bytes of each format: a zip (numpy's `.npz`; also torch ≥ 1.6, refused by `read_tensors`),
# a MAT-file's text header ("MATLAB 5.0 MAT-file, …"; scipy refuses 7.3's HDF5 with its own reason), and
# the pickle protocol-2 opcode a legacy `torch.save` starts with.
ZIP_MAGIC = b"PK\x03\x04"
MAT_MAGIC = b"MATLAB "
PICKLE_MAGIC = b"\x80\x02"


def read_vgg(path: Path) -> VGGWeights:
    """VGG-19 from a `.npz`, `.mat` or legacy `.pth`; `WeightsError` if missing, unreadable or not VGG-19."""
    kind = _kind(path)
    try:
        if kind == "mat":
            return read_mat(path)
        if kind == "pth":
            data = path.read_bytes()
            return convert_normalised_vgg19(read_tensors(data), f"file:{path.name} sha256={_sha256(data)}")
        return VGGWeights.load(path)
    except WeightsError as exc:
        raise WeightsError(_one_line(exc, path)) from exc
    except (OSError, MemoryError) as exc:
        raise WeightsError(f"{path}: cannot read the weights ({_reason(exc)})") from exc


def read_decoder(path: Path) -> DecoderWeights:
    """The AdaIN decoder from a `.npz` or legacy `.pth`; `WeightsError` if missing, unreadable or not one."""
    kind = _kind(path)
    try:
        if kind == "mat":
            raise WeightsError("a MatConvNet file holds no AdaIN decoder")
        if kind == "pth":
            data = path.read_bytes()
            return convert_decoder(read_tensors(data), f"file:{path.name} sha256={_sha256(data)}")
        return DecoderWeights.load(path)
    except WeightsError as exc:
        raise WeightsError(_one_line(exc, path)) from exc
    except (OSError, MemoryError) as exc:
        raise WeightsError(f"{path}: cannot read the decoder ({_reason(exc)})") from exc


def _kind(path: Path) -> str:
    """ "npz", "mat" or "pth" from the first bytes; a zip named `.pth`/`.pt` goes to the torch reader, which
    says why it is refused. Missing or unreadable files are refused here."""
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise WeightsError(f"{path}: a folder, not a weights file") from None
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read the weights ({_reason(exc)})") from exc
    if head.startswith(MAT_MAGIC):
        return "mat"
    if head.startswith(PICKLE_MAGIC) or (head.startswith(ZIP_MAGIC) and path.suffix in (".pth", ".pt")):
        return "pth"
    if head.startswith(ZIP_MAGIC):
        return "npz"
    raise WeightsError(
        f"{path}: not a weights file the engine reads (a .npz from `neural-style weights fetch`, "
        "a MatConvNet .mat or a legacy PyTorch .pth)"
    )


def _one_line(exc: WeightsError, path: Path) -> str:
    """The message on one line, naming the file once."""
    message = " ".join(str(exc).split())
    return message if str(path) in message else f"{path}: {message}"


def _reason(exc: BaseException) -> str:
    return " ".join((getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).split())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
