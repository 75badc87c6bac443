"""Reading, sizing and writing images as float32 RGB arrays in 0..255, shaped (H, W, 3)."""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from engine.host.files import replacing

# A decoded image above this many pixels is refused before decoding (a small file can claim 30000×30000).
MAX_PIXELS = 50_000_000
# Below this the network has nothing to see (VGG-19 pools four times before relu5_1), and past this
# aspect ratio the short side shrinks to a few pixels once the long side is scaled to the output size.
MIN_SIDE = 16
MAX_ASPECT = 10.0
# A reduced decode (JPEG's DCT scaling, `Image.reduce`'s box filter) stops at this many times the target
# size and Lanczos does the rest, as Pillow's `reducing_gap`: at 3 the result is within a level or so of
# a Lanczos resize of the whole image, while the decode still shrinks by up to 8× per side.
REDUCING_GAP = 3


class ImageProblem(StrEnum):
    """Why an image was refused, for a caller to word in its own voice (the bot's texts)."""

    MISSING = "missing"  # no such file, or a folder
    UNREADABLE = "unreadable"  # no allowed decoder recognises it: not an image, or not JPEG, PNG or WebP
    NOT_ALLOWED_FORMAT = "not_allowed_format"  # an output named with a suffix the engine does not write
    DAMAGED = "damaged"  # cut off or corrupt
    TOO_LARGE = "too_large"  # more than `limit` pixels
    TOO_SMALL = "too_small"  # a side shorter than `limit` pixels
    TOO_THIN = "too_thin"  # its long side more than `limit` times its short side


class ImageError(ValueError):
    """The input is not an image the engine can use: `kind` says why, with the numbers a message needs.

    Its text is a plain English sentence naming the image `name`, as the CLI and the logs show it.
    """

    def __init__(
        self,
        kind: ImageProblem,
        name: str,
        message: str,
        width: int | None = None,
        height: int | None = None,
        limit: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name  # what the message calls the image: its path, or a name the caller gave
        self.width = width  # pixels as displayed, when known
        self.height = height
        self.limit = limit  # TOO_LARGE: pixels; TOO_SMALL: pixels of the short side; TOO_THIN: the ratio

    def __reduce__(self) -> tuple[type[ImageError], tuple[object, ...]]:
        # Rebuilt from all its fields, not just the message, when it crosses to another process.
        return type(self), (self.kind, self.name, str(self), self.width, self.height, self.limit)


# The only decoders ever run on a user's bytes. A file's name and MIME type are the sender's claim, and an
# unrestricted `Image.open` tries every plugin Pillow has (EPS would start Ghostscript). An MPO (a JPEG
# with extra pictures appended, as phones write) is opened by the JPEG plugin, which reports it as "MPO";
# Pillow registers no opener of that name, so it must not be listed here.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP")
# What `save_image` writes, by the output's suffix.
OUTPUT_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}

# EXIF orientation → the transpose that shows the image upright (as `ImageOps.exif_transpose`).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# The same turns on an (H, W, C) array, for images already resized in float.
_TURNS: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}
_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class ImageInfo:
    """What an image's header says, checked: enough to accept or refuse it without decoding its pixels."""

    format: str  # "JPEG", "PNG" or "WEBP" (an MPO is reported as "JPEG")
    width: int  # pixels as displayed, i.e. after the EXIF orientation (5–8 swap width and height)
    height: int
    frames: int  # 1 for a still image; more for an animation or an MPO (only the first is used)


def inspect_image(
    source: Path | bytes, name: str | None = None, max_pixels: int = MAX_PIXELS, *, verify: bool = True
) -> ImageInfo:
    """Check a file or bytes from its header: format, size and frames; refuse what `load_image` would.

    With `verify`, damaged or cut-off data is caught cheaply too: a baseline JPEG is decoded at 1/8 scale
    (all of its data is read, an eighth of its pixels stored), a PNG's chunks are checked against their
    CRCs without inflating them, and a WebP is refused by Pillow at opening unless it is complete. A
    progressive JPEG is not decoded: at any scale its decoder holds all its DCT coefficients, 3–6 bytes a
    pixel, so damage in its data shows only when it is loaded. Errors call the input `name` (default: its
    path).
    """
    name = _name(source, name)
    with _opened(source, name, max_pixels) as img:
        width, height = _upright(img.size, _orientation(img))
        check_dimensions(width, height, name)
        info = ImageInfo(
            "JPEG" if img.format == "MPO" else str(img.format), width, height, getattr(img, "n_frames", 1)
        )
        if verify:
            if img.format in ("JPEG", "MPO") and not img.info.get("progressive"):
                img.draft(None, (max(1, img.width // 8), max(1, img.height // 8)))
                img.load()
            elif img.format == "PNG":
                img.verify()
    return info


def load_image(
    source: Path | bytes,
    max_pixels: int = MAX_PIXELS,
    name: str | None = None,
    max_side: int | None = None,
) -> np.ndarray:
    """Decode a file or bytes into (H, W, 3) float32 RGB, upright as the viewer sees it.

    Alpha is composited on white, CMYK/grayscale/16-bit/palette images are converted, and an animated
    image gives its first frame. Errors call the input `name` (default: its path).

    With `max_side`, a larger image comes out scaled down to that long side, sized as `fit_long_side`
    sizes it, without ever being held at full size in float: a JPEG is decoded at the coarsest DCT scale
    (1/2, 1/4, 1/8) not below `REDUCING_GAP` × the target, anything else is decoded in 8 bits and
    box-reduced by the largest whole factor that keeps that much, and only then is it Lanczos-resized in
    float to the exact size. Only WebP is still decoded whole (Pillow has no reduced WebP decode).
    """
    name = _name(source, name)
    with _opened(source, name, max_pixels) as img:
        img.seek(0)
        stored = img.size  # (width, height) before the EXIF orientation
        check_dimensions(*_upright(stored, _orientation(img)), name)
        target: tuple[int, int] | None = None  # (width, height), stored orientation, as fit_long_side rounds
        if max_side is not None and max(stored) > max_side:
            scale = max_side / max(stored)
            target = (max(1, round(stored[0] * scale)), max(1, round(stored[1] * scale)))
        drafted = 1.0  # how many times smaller the JPEG decoder delivers it
        if target is not None and img.format in ("JPEG", "MPO"):
            configured = img.draft(None, (target[0] * REDUCING_GAP, target[1] * REDUCING_GAP))
            if configured is not None:
                drafted = stored[0] / configured[1][2]
        img.load()
        orientation = _orientation(img)  # a PNG's EXIF may follow its pixel data
        small = _eight_bit(img)
        if target is None:
            rgb = _flatten(small)
            if orientation in _TRANSPOSE:
                rgb = rgb.transpose(_TRANSPOSE[orientation])
            return np.asarray(rgb, dtype=np.float32)
        factor = min(small.width // (target[0] * REDUCING_GAP), small.height // (target[1] * REDUCING_GAP))
        if factor >= 2:
            small = small.reduce(factor)
        pixels = np.asarray(_flatten(small), dtype=np.float32)
    # The DCT scaling and `reduce` round sizes up: the last row and column of `pixels` stand for only part
    # of a pixel, so the resize reads the exact extent of the picture rather than stretch it.
    shrink = drafted * max(factor, 1)
    extent = (0.0, 0.0, stored[0] / shrink, stored[1] / shrink)
    return _transposed(resize(pixels, (target[1], target[0]), box=extent), orientation)


def _transposed(image: np.ndarray, orientation: int) -> np.ndarray:
    """(H, W, C) turned upright for an EXIF orientation, as `Image.transpose` with `_TRANSPOSE` does."""
    turn = _TURNS.get(orientation)
    return image if turn is None else np.ascontiguousarray(turn(image))


def _name(source: Path | bytes, name: str | None) -> str:
    if name is not None:
        return name
    return "image" if isinstance(source, bytes) else os.fspath(source)


@contextmanager
def _opened(source: Path | bytes, name: str, max_pixels: int) -> Iterator[ImageFile.ImageFile]:
    """The image opened by an allowed decoder only, its size checked; every failure in the block (the
    caller's included) becomes an `ImageError` fit for the user."""
    try:
        head = source[:30] if isinstance(source, bytes) else _head(source, 30)
        claimed = _webp_size(head)
        if claimed is not None and claimed[0] * claimed[1] > max_pixels:
            # Pillow's WebP decoder allocates the whole canvas as it opens the file: check first.
            raise Image.DecompressionBombError(f"{claimed[0]}×{claimed[1]} pixels")
        stream = io.BytesIO(source) if isinstance(source, bytes) else source
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream, formats=ALLOWED_FORMATS) as img:
                if img.width * img.height > max_pixels:
                    raise Image.DecompressionBombError(f"{img.width}×{img.height} pixels")
                assert isinstance(img, ImageFile.ImageFile)
                yield img
    except FileNotFoundError:
        raise ImageError(ImageProblem.MISSING, name, f"{name} does not exist") from None
    except IsADirectoryError:
        raise ImageError(ImageProblem.MISSING, name, f"{name} is a folder, not an image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        message = f"{name} is too large (over {max_pixels // 1_000_000} megapixels)"
        raise ImageError(ImageProblem.TOO_LARGE, name, message, limit=max_pixels) from exc
    except UnidentifiedImageError as exc:
        raise ImageError(ImageProblem.UNREADABLE, name, f"{name} is not an image that can be read") from exc
    except (
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
    ) as exc:  # Pillow's errors for truncated or corrupt data
        if isinstance(exc, ImageError):
            raise
        raise ImageError(ImageProblem.DAMAGED, name, f"{name} is damaged or incomplete") from exc


def _head(path: Path, size: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(size)


def _webp_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from the first 30 bytes of a WebP file's header, or None if it is not one."""
    if head[:4] != b"RIFF" or head[8:12] != b"WEBP" or len(head) < 30:
        return None
    chunk = head[12:16]
    if chunk == b"VP8X":  # the canvas, 24-bit sizes minus one
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":  # lossy key frame, 14-bit sizes
        return int.from_bytes(head[26:28], "little") & 0x3FFF, int.from_bytes(head[28:30], "little") & 0x3FFF
    if chunk == b"VP8L" and head[20] == 0x2F:  # lossless, 14-bit sizes minus one
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation (1 = upright). A PNG's EXIF is only read if already parsed: asking for it
    otherwise makes Pillow decode every pixel."""
    if img.format == "PNG" and "exif" not in img.info:
        return 1
    value = img.getexif().get(_ORIENTATION_TAG, 1)
    return value if isinstance(value, int) and value in _TRANSPOSE else 1


def _upright(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """(width, height) as displayed, from the stored size and the EXIF orientation (or back again)."""
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


def check_dimensions(width: int, height: int, name: str = "image") -> None:
    """Refuse images too small or too long and thin to stylise, with a message fit for a user."""
    if min(width, height) < MIN_SIDE:
        message = f"{name} is too small ({width}×{height} pixels; at least {MIN_SIDE}×{MIN_SIDE} needed)"
        raise ImageError(ImageProblem.TOO_SMALL, name, message, width, height, MIN_SIDE)
    if max(width, height) > MAX_ASPECT * min(width, height):
        message = f"{name} is too long and thin ({width}×{height} pixels; at most {MAX_ASPECT:g}:1)"
        raise ImageError(ImageProblem.TOO_THIN, name, message, width, height, MAX_ASPECT)


def _eight_bit(img: Image.Image) -> Image.Image:
    """L, LA, RGB or RGBA in 8 bits: modes `Image.reduce` takes, alpha kept until after any reduction."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grayscale: scale to 8 bits instead of clipping everything above 255 to white. float32 is
        # exact enough here: v × 255 / 65535 never lies within its rounding error of a half.
        array = np.asarray(img)
        peak = 65535.0 if array.max() > 255 else 255.0
        return Image.fromarray(np.round(array.astype(np.float32) * (255.0 / peak)).astype(np.uint8), "L")
    if img.mode in ("L", "LA", "RGB", "RGBA"):
        return img
    if img.mode in ("P", "PA"):
        return img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB")
    if img.mode == "1":
        return img.convert("L")
    return img.convert("RGB")  # CMYK, YCbCr, RGBX and the like


def _flatten(img: Image.Image) -> Image.Image:
    """RGB, with any alpha composited on white."""
    if img.mode in ("RGBA", "LA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def fit_long_side(
    image: np.ndarray, max_size: int, resample: Image.Resampling = Image.Resampling.LANCZOS
) -> np.ndarray:
    """Scale down so the long side is at most `max_size`; smaller images are returned unchanged."""
    size = fitted_size(image.shape, max_size)
    return image if size == image.shape[:2] else resize(image, size, resample=resample)


def fitted_size(shape: tuple[int, ...], max_size: int) -> tuple[int, int]:
    """The (height, width) `fit_long_side` gives an image of `shape` (H, W, …)."""
    height, width = shape[:2]
    scale = max_size / max(height, width)
    if scale >= 1.0:
        return height, width
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(
    image: np.ndarray,
    size: tuple[int, int],
    box: tuple[float, float, float, float] | None = None,
    resample: Image.Resampling = Image.Resampling.LANCZOS,
) -> np.ndarray:
    """Resize (H, W, 3) float32 to `size` = (height, width), per channel in float, clipped to 0..255;
    with Lanczos filtering unless `resample` says otherwise (the benchmarks compare filters).

    `box` = (left, top, right, bottom), in pixels and possibly fractional, is the region to resize
    (default: all of it).
    """
    height, width = size
    if image.shape[:2] == (height, width) and box is None:
        return image
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(image[..., c])).resize((width, height), resample, box=box)
        )
        for c in range(image.shape[2])
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 255.0).astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round and clip float pixels to uint8."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def save_image(image: np.ndarray, path: Path, quality: int = 92) -> None:
    """Write atomically; the format follows the suffix (.png, .jpg/.jpeg, .webp)."""
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        message = f"{path.name}: output must end in .png, .jpg, .jpeg or .webp"
        raise ImageError(ImageProblem.NOT_ALLOWED_FORMAT, path.name, message)
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    with replacing(path) as tmp:
        Image.fromarray(to_uint8(image), "RGB").save(tmp, format=fmt, **options)


# Full-range YCbCr (JPEG/JFIF, as Pillow's "YCbCr" mode), in float so nothing is rounded twice.
_RGB_TO_YCBCR = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=np.float32
)
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR).astype(np.float32)


def rgb_to_ycbcr(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB in 0..255 → Y in 0..255, Cb and Cr centred on 128."""
    ycc = image @ _RGB_TO_YCBCR.T
    ycc[..., 1:] += 128.0
    return ycc


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Inverse of `rgb_to_ycbcr`."""
    centred = ycc.copy()
    centred[..., 1:] -= 128.0
    return centred @ _YCBCR_TO_RGB.T


def preserve_colors(content: np.ndarray, styled: np.ndarray) -> np.ndarray:
    """The styled image's luminance (Rec. 601) with the content's chroma, as anishathalye/neural-style's
    luminance transfer."""
    styled_y = rgb_to_ycbcr(np.clip(styled, 0, 255))[..., 0]
    content_ycc = rgb_to_ycbcr(np.clip(content, 0, 255))
    content_ycc[..., 0] = styled_y
    return np.clip(ycbcr_to_rgb(content_ycc), 0, 255).astype(np.float32)
