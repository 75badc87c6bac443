"""Reading, sizing and writing images as float32 RGB arrays in 0..255, shaped (H, W, 3)."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# A decoded image above this many pixels is refused before decoding (a small file can claim 30000×30000).
MAX_PIXELS = 50_000_000
# Below this the network has nothing to see (VGG-19 pools four times before relu5_1), and past this
# aspect ratio the short side shrinks to a few pixels once the long side is scaled to the output size.
MIN_SIDE = 16
MAX_ASPECT = 10.0


class ImageError(ValueError):
    """The input is not an image the engine can use; the message is fit to show a user."""


def load_image(source: Path | bytes, max_pixels: int = MAX_PIXELS, name: str | None = None) -> np.ndarray:
    """Decode a file or bytes into (H, W, 3) float32 RGB, upright as the viewer sees it.

    Alpha is composited on white, CMYK/grayscale/16-bit/palette images are converted, and an animated
    image gives its first frame. Errors call the input `name` (default: its path).
    """
    if name is None:
        name = "image" if isinstance(source, bytes) else os.fspath(source)
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream) as img:
                if img.width * img.height > max_pixels:
                    raise Image.DecompressionBombError(f"{img.width}×{img.height} pixels")
                img.seek(0)
                rgb = _to_rgb(ImageOps.exif_transpose(img))
    except FileNotFoundError:
        raise ImageError(f"{name} does not exist") from None
    except IsADirectoryError:
        raise ImageError(f"{name} is a folder, not an image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{name} is too large (over {max_pixels // 1_000_000} megapixels)") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{name} is not an image that can be read") from exc
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow's errors for truncated or corrupt data
        if isinstance(exc, ImageError):
            raise
        raise ImageError(f"{name} is damaged or incomplete") from exc
    check_dimensions(rgb.width, rgb.height, name)
    return np.asarray(rgb, dtype=np.float32)


def check_dimensions(width: int, height: int, name: str = "image") -> None:
    """Refuse images too small or too long and thin to stylise, with a message fit for a user."""
    if min(width, height) < MIN_SIDE:
        raise ImageError(
            f"{name} is too small ({width}×{height} pixels; at least {MIN_SIDE}×{MIN_SIDE} needed)"
        )
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageError(f"{name} is too long and thin ({width}×{height} pixels; at most {MAX_ASPECT:g}:1)")


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grayscale: scale to 8 bits instead of clipping everything above 255 to white.
        array = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if array.max() > 255 else 255.0
        img = Image.fromarray(np.round(array * (255.0 / peak)).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def fit_long_side(image: np.ndarray, max_size: int) -> np.ndarray:
    """Scale down so the long side is at most `max_size`; smaller images are returned unchanged."""
    height, width = image.shape[:2]
    scale = max_size / max(height, width)
    if scale >= 1.0:
        return image
    return resize(image, (max(1, round(height * scale)), max(1, round(width * scale))))


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (H, W, 3) float32 to `size` = (height, width) with Lanczos filtering, per channel in float."""
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    lanczos = Image.Resampling.LANCZOS
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c])).resize((width, height), lanczos))
        for c in range(image.shape[2])
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 255.0).astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round and clip float pixels to uint8."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def save_image(image: np.ndarray, path: Path, quality: int = 92) -> None:
    """Write atomically; the format follows the suffix (.png, .jpg/.jpeg, .webp)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(f"{path.name}: output must end in .png, .jpg, .jpeg or .webp")
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    Image.fromarray(to_uint8(image), "RGB").save(tmp, format=fmt, **options)
    tmp.replace(path)


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
    """The styled image's luminance (Rec. 601) with the content's chroma, as the seed's luminance transfer."""
    styled_y = rgb_to_ycbcr(np.clip(styled, 0, 255))[..., 0]
    content_ycc = rgb_to_ycbcr(np.clip(content, 0, 255))
    content_ycc[..., 0] = styled_y
    return np.clip(ycbcr_to_rgb(content_ycc), 0, 255).astype(np.float32)
