"""Status pictures: the photo being painted, small, without the bot process ever decoding a big picture.

A baseline JPEG decodes at an eighth of its size or less (`draft`), and a small picture costs little even
whole, so those thumbnails are made in the bot process (in a thread). Any other picture is decoded whole:
a big PNG or WebP, or a big progressive JPEG, whose decoder holds every DCT coefficient at any scale
(3–6 bytes a pixel). Those are made in one child process, spawned when first needed, which imports
only this module and Pillow. A child that dies (killed, out of memory) fails the pictures it had, and
the next call spawns a new one.
"""

from __future__ import annotations

import asyncio
import functools
import io
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from PIL import Image, ImageOps

__all__ = [
    "SMALL_PIXELS",
    "THUMBNAIL_SIDE",
    "ThumbnailError",
    "close",
    "made_here",
    "placeholder",
    "status_picture",
]

# The status message shows the photo being painted this small until the preview and result replace it.
THUMBNAIL_SIDE = 320
# A picture of at most this many pixels is made in the bot process whatever its format: decoded whole it
# costs about 20 MB at most (an RGBA picture and its RGB copy are 4 bytes a pixel each; a progressive
# JPEG's coefficients 3–6).
SMALL_PIXELS = 2_000_000
CLIP = "clip"  # the `fmt` of an animation or video: its first frame is the status picture
# Modes resized as they are; any other becomes RGB first (palette, 16-bit and CMYK resize poorly or not
# at all, and alpha is dropped before resizing, not weighted into the colours).
_RESIZABLE_MODES = ("L", "RGB")
# Pillow's errors for a picture it cannot read, and its refusal of one too large to decode.
_UNREADABLE = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


class ThumbnailError(OSError):
    """No status picture could be made: the file is unreadable or too large, or the child making it died.

    An `OSError`, as reading a file fails with one too, so a caller handles both in one `except`.
    """


async def status_picture(path: Path) -> bytes:
    """A small upright RGB JPEG of a saved upload, fitting a `THUMBNAIL_SIDE` square.

    Raises `ThumbnailError` when none can be made; the next call is unaffected.
    """
    try:
        # A clip's first frame is decoded by FFmpeg, in the child: the bot process decodes no video.
        fmt, here = (CLIP, False) if _is_clip(path) else await asyncio.to_thread(made_here, path)
        if here:
            return await asyncio.to_thread(thumbnail, path, fmt)
        return await _CHILD.thumbnail(path, fmt)
    except (*_UNREADABLE, MemoryError, BrokenProcessPool) as exc:
        raise ThumbnailError(f"{path.name}: no status picture: {str(exc) or type(exc).__name__}") from exc


@functools.cache
def placeholder() -> bytes:
    """A plain grey picture for a status message whose photo could not be made small."""
    buffer = io.BytesIO()
    Image.new("RGB", (THUMBNAIL_SIDE, THUMBNAIL_SIDE * 3 // 4), (200, 200, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


def made_here(path: Path) -> tuple[str, bool]:
    """The picture's format from its header, and whether its thumbnail is cheap enough for the bot process.

    Only the header is read. Pillow's errors say why a file cannot be read; a picture over the engine's
    pixel limit is refused with its `DecompressionBombError`.
    """
    # Imported here, not at the top: the child imports this module, and stays at Pillow's size without numpy.
    from engine.images import ALLOWED_FORMATS, MAX_PIXELS

    with Image.open(path, formats=ALLOWED_FORMATS) as img:
        pixels = img.width * img.height
        if pixels > MAX_PIXELS:
            raise Image.DecompressionBombError(f"{img.width}×{img.height} pixels")
        # An MPO (a phone's JPEG with more pictures after it) is read by the JPEG decoder.
        fmt = "JPEG" if img.format == "MPO" else str(img.format)
        baseline = fmt == "JPEG" and not img.info.get("progressive")
    return fmt, baseline or pixels <= SMALL_PIXELS


def thumbnail(path: Path, fmt: str) -> bytes:
    """The status picture of a `fmt` picture (a Pillow format name, or `CLIP`: its first frame): decoded
    as small as the format allows (a JPEG at 1/2, 1/4 or 1/8 scale), reduced, turned upright and saved as
    a JPEG."""
    if fmt == CLIP:
        from engine.clips import first_frame

        frame = first_frame(path, THUMBNAIL_SIDE)  # (H, W, 3) float32 0..255
        buffer = io.BytesIO()
        Image.fromarray(frame.clip(0, 255).astype("uint8")).save(buffer, format="JPEG", quality=85)
        return buffer.getvalue()
    with Image.open(path, formats=(fmt,)) as img:
        img.draft("RGB", (THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        small: Image.Image = img if img.mode in _RESIZABLE_MODES else img.convert("RGB")
        # Reduced before it is turned: a turn of the whole picture would copy every pixel.
        small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        upright = ImageOps.exif_transpose(small).convert("RGB")
    buffer = io.BytesIO()
    upright.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _is_clip(path: Path) -> bool:
    # Imported here: engine.clips brings numpy and FFmpeg, which the child needs only for a clip.
    from engine.clips import is_clip

    return is_clip(path)


def close() -> None:
    """Stop the child process, if one runs (the bot's post_shutdown): it finishes the pictures it has, and
    this returns once it has exited. A later call spawns a new one."""
    _CHILD.close()


class _Child:
    """The one spawned process that makes the costly thumbnails, started on first use."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    async def thumbnail(self, path: Path, fmt: str) -> bytes:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        pool = self._pool
        try:
            return await asyncio.wrap_future(pool.submit(thumbnail, path, fmt))
        except BrokenProcessPool:
            # The child died: every picture it had fails, and the next call spawns a new child.
            if self._pool is pool:
                self._pool = None
            pool.shutdown(wait=False)
            raise

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


_CHILD = _Child()
