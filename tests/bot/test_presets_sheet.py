"""The /styles contact sheet: a small JPEG with one labelled tile per preset, whatever the files and names."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot.presets_sheet import (
    BACKGROUND,
    LONG_SIDE,
    PLACEHOLDER,
    cached_sheet,
    label,
    layout,
    render_sheet,
    sheet_key,
)

COLOURS = [(220, 40, 40), (40, 180, 60), (50, 80, 220), (230, 200, 40), (200, 60, 200), (40, 200, 200)]
Box = tuple[int, int, int, int]


def solid(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (120, 90)) -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


def presets(folder: Path, count: int) -> list[tuple[str, Path]]:
    return [(f"style_{i + 1}", solid(folder / f"{i}.png", COLOURS[i % len(COLOURS)])) for i in range(count)]


def decode(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    return np.asarray(image.convert("RGB")).astype(int)


def centre(pixels: np.ndarray, box: Box) -> np.ndarray:
    """The mean colour of the middle half of `box`."""
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    region = pixels[top + height // 4 : bottom - height // 4, left + width // 4 : right - width // 4]
    return region.reshape(-1, 3).mean(axis=0)


def ink(pixels: np.ndarray, box: Box) -> np.ndarray:
    """A mask of the dark (text) pixels in `box`."""
    left, top, right, bottom = box
    return pixels[top:bottom, left:right].sum(axis=2) < 3 * 110


@pytest.mark.parametrize("count", [1, 2, 5, 12, 40])
def test_sheet_is_a_small_jpeg_within_the_long_side(tmp_path: Path, count: int) -> None:
    data = render_sheet(presets(tmp_path, count))
    pixels = decode(data)
    assert (pixels.shape[1], pixels.shape[0]) == layout(count).size
    assert max(pixels.shape[:2]) <= LONG_SIDE
    assert len(data) < 1_000_000


@pytest.mark.parametrize("count", range(1, 61))
def test_layout_fits_every_tile_and_label_on_the_sheet(count: int) -> None:
    grid = layout(count)
    width, height = grid.size
    assert max(width, height) <= LONG_SIDE
    assert grid.columns * grid.rows >= count > grid.columns * (grid.rows - 1)
    assert (grid.columns <= 3) == (count <= 15)
    boxes = [grid.tile_box(i) for i in range(count)] + [grid.label_box(i) for i in range(count)]
    assert all(
        0 <= left < right <= width and 0 <= top < bottom <= height for left, top, right, bottom in boxes
    )
    covered = np.zeros((height, width), dtype=int)
    for left, top, right, bottom in boxes:
        covered[top:bottom, left:right] += 1
    assert covered.max() == 1


def test_layout_refuses_an_empty_sheet() -> None:
    with pytest.raises(ValueError, match="at least one"):
        layout(0)


def test_every_preset_gets_its_own_tile_in_order(tmp_path: Path) -> None:
    chosen = presets(tmp_path, 6)
    pixels = decode(render_sheet(chosen))
    grid = layout(6)
    for index, colour in enumerate(COLOURS):
        assert np.abs(centre(pixels, grid.tile_box(index)) - colour).max() < 12, index


def test_every_tile_has_a_label_inside_its_band(tmp_path: Path) -> None:
    # Names from short to the longest allowed: some fit, some fit smaller, some are cut short.
    image = solid(tmp_path / "a.png", COLOURS[0])
    chosen = [(("Wide_names-" * 3)[: 9 + 2 * i], image) for i in range(12)]
    pixels = decode(render_sheet(chosen))
    grid = layout(len(chosen))
    for index in range(len(chosen)):
        left, top, right, bottom = grid.label_box(index)
        assert ink(pixels, (left, top, right, bottom)).sum() > 50, index
        # Text never spills out of its band: the gap beside and below it stays background.
        beside = (right, top, min(right + grid.gap, grid.size[0]), bottom)
        below = (left, bottom, right, bottom + grid.gap)
        assert not ink(pixels, beside).any(), index
        assert not ink(pixels, below).any(), index


def test_a_longer_label_has_more_ink(tmp_path: Path) -> None:
    image = solid(tmp_path / "a.png", COLOURS[0])
    pixels = decode(render_sheet([("ab", image), ("abcdefgh", image)]))
    grid = layout(2)
    assert ink(pixels, grid.label_box(1)).sum() > ink(pixels, grid.label_box(0)).sum() * 1.5


@pytest.mark.parametrize("name", ["starry_night", "Monet-2", "x", "ABC_123"])
def test_a_name_the_font_can_draw_is_drawn(name: str) -> None:
    assert label(7, name) == f"7 · {name}"


@pytest.mark.parametrize("name", ["Моне", "梵高", "ゴッホ", "Café", "Ωmega", "모네"])
def test_a_name_with_a_letter_the_font_lacks_shows_the_number_alone(name: str) -> None:
    assert label(7, name) == "7"


def test_names_in_other_scripts_draw_the_same_number_and_no_boxes(tmp_path: Path) -> None:
    image = solid(tmp_path / "a.png", COLOURS[0])
    grid = layout(2)
    number_only = decode(render_sheet([("x", image), ("Моне", image)]))
    cjk = decode(render_sheet([("x", image), ("梵高", image)]))
    cyrillic_band, cjk_band = ink(number_only, grid.label_box(1)), ink(cjk, grid.label_box(1))
    # Boxes for the missing letters would make the two bands differ (two glyphs against four).
    assert np.array_equal(cyrillic_band, cjk_band)
    columns = np.flatnonzero(cjk_band.any(axis=0))
    assert 0 < columns[-1] - columns[0] < grid.font_size


@pytest.mark.parametrize("content", [None, b"", b"not an image at all", "truncated"])
def test_an_unreadable_file_gets_a_labelled_placeholder(tmp_path: Path, content: bytes | str | None) -> None:
    broken = tmp_path / "broken.jpg"
    if content == "truncated":
        buffer = io.BytesIO()
        Image.effect_noise((400, 300), 60).convert("RGB").save(buffer, format="JPEG")
        broken.write_bytes(buffer.getvalue()[:2000])
    elif isinstance(content, bytes):
        broken.write_bytes(content)
    chosen = [("good", solid(tmp_path / "good.png", COLOURS[2])), ("broken", broken)]
    pixels = decode(render_sheet(chosen))
    grid = layout(2)
    left, top, right, _ = grid.tile_box(1)
    corner = (left, top, left + (right - left) // 4, top + (right - left) // 4)
    assert np.abs(centre(pixels, corner) - PLACEHOLDER).max() < 6
    assert ink(pixels, grid.label_box(1)).sum() > 50
    assert np.abs(centre(pixels, grid.tile_box(0)) - COLOURS[2]).max() < 12


def test_exif_orientation_is_honoured(tmp_path: Path) -> None:
    # Stored 200x100, red left and blue right; orientation 6 shows it turned clockwise: red on top.
    stored = Image.new("RGB", (200, 100), COLOURS[2])
    stored.paste(COLOURS[0], (0, 0, 100, 100))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "turned.jpg", exif=exif, quality=95)
    pixels = decode(render_sheet([("turned", tmp_path / "turned.jpg")]))
    left, top, right, bottom = layout(1).tile_box(0)
    middle = (top + bottom) // 2
    assert np.abs(centre(pixels, (left, top, right, middle)) - COLOURS[0]).max() < 15
    assert np.abs(centre(pixels, (left, middle, right, bottom)) - COLOURS[2]).max() < 15


def test_transparency_is_flattened_on_the_background(tmp_path: Path) -> None:
    Image.new("RGBA", (80, 80), (0, 0, 0, 0)).save(tmp_path / "clear.png")  # black, but all see-through
    Image.new("RGBA", (80, 80), (*COLOURS[1], 255)).save(tmp_path / "opaque.webp", lossless=True)
    chosen = [("clear", tmp_path / "clear.png"), ("opaque", tmp_path / "opaque.webp")]
    pixels = decode(render_sheet(chosen))
    grid = layout(2)
    assert np.abs(centre(pixels, grid.tile_box(0)) - BACKGROUND).max() < 6
    assert np.abs(centre(pixels, grid.tile_box(1)) - COLOURS[1]).max() < 12


@pytest.mark.parametrize(
    ("suffix", "mode"), [(".jpg", "RGB"), (".jpg", "CMYK"), (".webp", "RGB"), (".png", "P"), (".png", "I;16")]
)
def test_each_kind_of_image_makes_a_tile_of_its_colour(tmp_path: Path, suffix: str, mode: str) -> None:
    grey = (150, 150, 150)
    if mode == "I;16":  # 16-bit grey: 150 × 257 is the same grey, scaled rather than clipped to white
        image = Image.new("I", (90, 60), 150 * 257).convert("I;16")
    else:
        image = Image.new("RGB", (90, 60), grey).convert(mode)
    image.save(tmp_path / f"style{suffix}")
    pixels = decode(render_sheet([("style", tmp_path / f"style{suffix}")]))
    assert np.abs(centre(pixels, layout(1).tile_box(0)) - grey).max() < 8


def test_a_big_photo_is_cropped_to_its_centre(tmp_path: Path) -> None:
    # 2400x1200: yellow outer quarters, green middle half, so a square centre crop is all green.
    big = Image.new("RGB", (2400, 1200), COLOURS[3])
    big.paste(COLOURS[1], (600, 0, 1800, 1200))
    big.save(tmp_path / "big.jpg", quality=90)
    pixels = decode(render_sheet([("big", tmp_path / "big.jpg")]))
    left, top, right, bottom = layout(1).tile_box(0)
    assert np.abs(pixels[top + 2 : bottom - 2, left + 2 : right - 2] - COLOURS[1]).max() < 25


def test_key_is_stable_for_the_same_presets(tmp_path: Path) -> None:
    chosen = presets(tmp_path, 3)
    again = [(name, Path(str(path))) for name, path in chosen]
    assert sheet_key(chosen) == sheet_key(again)
    assert len(sheet_key(chosen)) == 64


def test_key_changes_on_add_remove_rename_reorder_and_missing_file(tmp_path: Path) -> None:
    chosen = presets(tmp_path, 3)
    keys = {
        sheet_key(chosen),
        sheet_key([*chosen, ("new", solid(tmp_path / "new.png", COLOURS[4]))]),
        sheet_key(chosen[:2]),
        sheet_key([("renamed", chosen[0][1]), *chosen[1:]]),
        sheet_key(chosen[::-1]),
    }
    assert len(keys) == 5
    before = sheet_key(chosen)
    chosen[1][1].unlink()
    assert sheet_key(chosen) != before


def test_key_changes_when_a_file_is_replaced_even_with_the_same_size_and_time(tmp_path: Path) -> None:
    chosen = presets(tmp_path, 2)
    path = chosen[0][1]
    before, old = sheet_key(chosen), path.stat()
    replacement = tmp_path / "replacement.png"
    replacement.write_bytes(bytes(reversed(path.read_bytes())))
    os.utime(replacement, ns=(old.st_atime_ns, old.st_mtime_ns))
    os.replace(replacement, path)
    assert sheet_key(chosen) != before


def test_cached_sheet_draws_once_and_reuses_the_file(tmp_path: Path) -> None:
    chosen = presets(tmp_path, 3)
    cache = tmp_path / "cache" / "sheets"
    first = cached_sheet(chosen, cache)
    assert first.read_bytes() == render_sheet(chosen)
    stamp = first.stat()
    second = cached_sheet(chosen, cache)
    assert second == first
    assert (second.stat().st_ino, second.stat().st_mtime_ns) == (stamp.st_ino, stamp.st_mtime_ns)
    assert sorted(p.name for p in cache.iterdir()) == [first.name]


def test_cached_sheet_draws_anew_after_a_change_and_drops_stale_sheets(tmp_path: Path) -> None:
    chosen = presets(tmp_path, 3)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "styles-0123.jpg").write_bytes(b"an older sheet")
    (cache / "notes.txt").write_text("not ours")
    old = cached_sheet(chosen, cache)
    new = cached_sheet(chosen[:2], cache)
    assert new != old
    assert decode(new.read_bytes()).shape[:2] == layout(2).size[::-1]
    assert sorted(p.name for p in cache.iterdir()) == sorted([new.name, "notes.txt"])
