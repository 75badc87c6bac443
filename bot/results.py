"""A finished painting as Telegram takes it: a photo to show and a full-size file, each within its limits;
a painted clip as an animation."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from engine.clips import inspect_clip, is_clip
from engine.images import ALLOWED_FORMATS

# Telegram's limits for a photo (bytes; width + height; long side over short side); anything beyond goes out
# as a document, and a bot may upload no file larger than UPLOAD_MAX_BYTES.
PHOTO_MAX_BYTES = 10 * 1024 * 1024
PHOTO_MAX_DIMENSIONS = 10_000
PHOTO_MAX_RATIO = 20
UPLOAD_MAX_BYTES = 50 * 1024 * 1024
# Clients show photos recompressed to this long side: a longer result is also sent as a file.
FULL_SIZE_OVER = 1280
JPEG_QUALITY = 95  # a result too big as PNG is sent as this JPEG instead


@dataclass(frozen=True)
class Result:
    """A finished picture as it goes to the chat."""

    photo: bytes | None = field(repr=False)  # shown as a photo; None: it goes as a document only
    document: bytes = field(repr=False)  # the full-size file
    filename: str  # painting-<job id>.png (or .jpg, or .mp4)
    width: int
    height: int
    seconds: float | None = None  # a painted clip: an animation (H.264 MP4) this long; None for a picture

    @property
    def large(self) -> bool:
        """Longer than the photos clients show: the full-size file goes out as well."""
        return max(self.width, self.height) > FULL_SIZE_OVER


def prepare(
    path: Path, job_id: int, photo_limit: int = PHOTO_MAX_BYTES, upload_limit: int = UPLOAD_MAX_BYTES
) -> Result:
    """The result at `path` as a photo and a full-size file, each within Telegram's limits.

    A clip is sent as it is, as an animation. For a picture, the file is the result itself, or a JPEG
    of it when it is over `upload_limit`. The photo is the result where Telegram takes it as one; for a
    large result that it would not take, a JPEG, downscaled only as far as the photo limits need. A small
    result Telegram would not take goes as a document only.
    """
    if is_clip(path):
        info = inspect_clip(path)
        return Result(
            None, path.read_bytes(), f"painting-{job_id}.mp4", info.width, info.height, info.seconds
        )
    data = path.read_bytes()
    with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as img:
        width, height = img.size
        document, suffix = data, path.suffix.lower() or ".png"
        if len(data) > upload_limit:
            document, suffix = _jpeg(img), ".jpg"
        large = max(width, height) > FULL_SIZE_OVER
        photo: bytes | None = None
        if max(width, height) <= PHOTO_MAX_RATIO * min(width, height):
            if len(data) <= photo_limit and width + height <= PHOTO_MAX_DIMENSIONS:
                photo = data
            elif large:
                photo = _jpeg_photo(img, photo_limit)
    return Result(photo, document, f"painting-{job_id}{suffix}", width, height)


def _jpeg(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _jpeg_photo(img: Image.Image, limit: int) -> bytes:
    """A JPEG of `img` within the photo limits, at full size if it fits."""
    width, height = img.size
    scale = min(1.0, PHOTO_MAX_DIMENSIONS / (width + height))
    while True:
        size = (max(1, math.floor(width * scale)), max(1, math.floor(height * scale)))
        data = _jpeg(img if size == img.size else img.convert("RGB").resize(size, Image.Resampling.LANCZOS))
        if len(data) <= limit:
            return data
        scale *= min(0.9, math.sqrt(limit / len(data)))
