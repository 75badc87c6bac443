"""The /styles contact sheet: each preset's thumbnail, number and name in one JPEG, cached on disk."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from engine.images import ALLOWED_FORMATS, inspect_image

logger = logging.getLogger(__name__)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

LONG_SIDE = 1280  # Telegram shows photos up to this size without scaling them down again
BACKGROUND = (242, 242, 242)
INK = (32, 32, 32)
PLACEHOLDER = (190, 190, 190)  # the tile of a preset whose image cannot be read
# Font pixels per pixel of sheet width: about 14 pt on a phone that shows the sheet across its screen.
TEXT_SCALE = 0.038
MIN_FONT = 12
# Bump when the drawing changes, so sheets cached by an older version are drawn again.
VERSION = 1


@dataclass(frozen=True)
class Layout:
    """Where each preset's tile and label go on a sheet."""

    columns: int
    rows: int
    tile: int  # side of a square thumbnail in pixels
    gap: int  # space between tiles and around the edge
    band: int  # height of the label strip under each thumbnail
    font_size: int

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the sheet."""
        return (
            self.columns * self.tile + (self.columns + 1) * self.gap,
            self.rows * (self.tile + self.band) + (self.rows + 1) * self.gap,
        )

    def tile_box(self, index: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the thumbnail of the preset at `index`."""
        row, column = divmod(index, self.columns)
        left = self.gap + column * (self.tile + self.gap)
        top = self.gap + row * (self.tile + self.band + self.gap)
        return left, top, left + self.tile, top + self.tile

    def label_box(self, index: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the label strip under the thumbnail at `index`."""
        left, _, right, bottom = self.tile_box(index)
        return left, bottom, right, bottom + self.band


def columns(count: int) -> int:
    """Tiles per row: three keep thumbnails big on a phone; more only when the sheet would grow too tall."""
    if count == 4:
        return 2
    if count <= 15:
        return min(count, 3)
    return max(4, math.ceil(math.sqrt(count * 0.6)))


def layout(count: int) -> Layout:
    """The biggest tiles for `count` presets that keep the sheet's long side within LONG_SIDE."""
    if count < 1:
        raise ValueError("a sheet needs at least one preset")
    cols = columns(count)
    rows = math.ceil(count / cols)
    tile = LONG_SIDE // cols
    while True:
        width = cols * tile + (cols + 1) * round(tile / 20)
        font_size = max(MIN_FONT, round(TEXT_SCALE * width))
        result = Layout(cols, rows, tile, round(tile / 20), round(font_size * 1.5), font_size)
        if max(result.size) <= LONG_SIDE:
            return result
        tile -= 1


def label(number: int, name: str) -> str:
    """The text under a tile: "3 · name", or "3" alone when the bundled font lacks a letter of the name."""
    return f"{number} · {name}" if _drawable(ImageFont.load_default(size=MIN_FONT * 2), name) else str(number)


def _drawable(font: Font, text: str) -> bool:
    # Pillow's bundled Aileron has little beyond ASCII; a letter it lacks renders as its .notdef box (tofu),
    # so a letter whose mask is that box is missing. U+10FFFF is a noncharacter no font maps.
    missing = bytes(font.getmask("\U0010ffff"))
    return all(bytes(font.getmask(char)) != missing for char in set(text))


def _fit(text: str, number: int, size: int, width: int) -> tuple[str, Font]:
    """`text` in the largest font down to 3/4 of `size` that fits `width`, else ellipsised at that size."""
    for font_size in range(size, max(MIN_FONT, size * 3 // 4) - 1, -1):
        font = ImageFont.load_default(size=font_size)
        if font.getlength(text) <= width:
            return text, font
    prefix = f"{number} · "
    name = text.removeprefix(prefix)
    while name and font.getlength(f"{prefix}{name}…") > width:
        name = name[:-1]
    return (f"{prefix}{name}…" if name else str(number)), font


def _thumbnail(path: Path, side: int) -> Image.Image:
    """The image at `path` as a centred square of `side` pixels, upright, any alpha on the background."""
    inspect_image(path, verify=False)  # the engine's checks of format and size, from the header alone
    with Image.open(path, formats=ALLOWED_FORMATS) as image:
        image.draft("RGB", (side, side))  # JPEG decodes at 1/2, 1/4 or 1/8 scale: cheap for huge photos
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
        upright: Image.Image = image
    if upright.mode.startswith("I"):  # 16-bit grey: scaled to 8 bits, not clipped to white
        upright = upright.convert("I").point(lambda value: value / 257)
    has_alpha = "A" in upright.getbands() or "transparency" in upright.info
    if upright.mode != ("RGBA" if has_alpha else "RGB"):
        upright = upright.convert("RGBA" if has_alpha else "RGB")
    width, height = upright.size
    short = min(width, height)
    box = ((width - short) / 2, (height - short) / 2, (width + short) / 2, (height + short) / 2)
    square = upright.resize((side, side), Image.Resampling.LANCZOS, box=box, reducing_gap=2.0)
    if not has_alpha:
        return square
    flat = Image.new("RGB", square.size, BACKGROUND)
    flat.paste(square, mask=square.getchannel("A"))
    return flat


def _placeholder(side: int) -> Image.Image:
    tile = Image.new("RGB", (side, side), PLACEHOLDER)
    font = ImageFont.load_default(size=max(MIN_FONT, side // 2))
    ImageDraw.Draw(tile).text((side / 2, side / 2), "?", fill=BACKGROUND, font=font, anchor="mm")
    return tile


def render_sheet(presets: Sequence[tuple[str, Path]]) -> bytes:
    """The contact sheet of `presets` (name, image path) in display order, numbered from 1, as JPEG bytes."""
    grid = layout(len(presets))
    sheet = Image.new("RGB", grid.size, BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for index, (name, path) in enumerate(presets):
        left, top, right, _ = grid.tile_box(index)
        try:
            tile = _thumbnail(path, grid.tile)
        # ImageError (a ValueError) from the checks, and Pillow's errors for damaged data: that preset's
        # tile shows it, never the whole /styles answer.
        except (OSError, ValueError, SyntaxError, EOFError) as error:
            logger.warning("Preset %r: cannot read %s (%s)", name, path, error)
            tile = _placeholder(grid.tile)
        sheet.paste(tile, (left, top))
        text, font = _fit(label(index + 1, name), index + 1, grid.font_size, grid.tile)
        _, band_top, _, band_bottom = grid.label_box(index)
        draw.text(((left + right) / 2, (band_top + band_bottom) / 2), text, fill=INK, font=font, anchor="mm")
    buffer = io.BytesIO()
    sheet.save(buffer, format="JPEG", quality=88, optimize=True)
    return buffer.getvalue()


def sheet_key(presets: Sequence[tuple[str, Path]]) -> str:
    """A hex digest that changes when a preset is added, removed, renamed, reordered or its file replaced."""
    entries: list[list[object]] = [[VERSION]]
    for name, path in presets:
        try:
            stat = path.stat()
            entries.append([name, str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino])
        except OSError:
            entries.append([name, str(path), None])
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()


def cached_sheet(presets: Sequence[tuple[str, Path]], folder: Path) -> Path:
    """The sheet of `presets` as a file in `folder`, drawn only if not there yet; older sheets are removed."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"styles-{sheet_key(presets)}.jpg"
    if not path.exists():
        data = render_sheet(presets)
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".styles-", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    for stale in folder.glob("styles-*.jpg"):
        if stale != path:
            stale.unlink(missing_ok=True)
    return path
