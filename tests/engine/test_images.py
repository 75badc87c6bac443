"""Image decoding and colour conversion."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.images import (
    ImageError,
    fit_long_side,
    load_image,
    preserve_colors,
    rgb_to_ycbcr,
    save_image,
    ycbcr_to_rgb,
)


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def test_ycbcr_round_trip_and_matches_pillow() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-3)
    pillow = np.asarray(Image.fromarray(rgb.astype(np.uint8)).convert("YCbCr"), dtype=np.float32)
    np.testing.assert_allclose(rgb_to_ycbcr(rgb), pillow, atol=1.01)


def test_preserve_colors_takes_luminance_from_styled_and_chroma_from_content() -> None:
    content = np.full((4, 4, 3), (200.0, 60.0, 40.0), dtype=np.float32)
    styled = np.full((4, 4, 3), (90.0, 90.0, 90.0), dtype=np.float32)
    out = rgb_to_ycbcr(preserve_colors(content, styled))
    np.testing.assert_allclose(out[..., 0], 90.0, atol=1e-3)
    np.testing.assert_allclose(out[..., 1:], rgb_to_ycbcr(content)[..., 1:], atol=1e-3)


def test_alpha_is_composited_on_white() -> None:
    img = Image.new("RGBA", (30, 20), (255, 0, 0, 0))
    assert load_image(encode(img, "PNG"))[0, 0].tolist() == [255.0, 255.0, 255.0]


def test_exif_rotation_is_applied() -> None:
    img = Image.new("RGB", (40, 20), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    assert load_image(encode(img, "JPEG", exif=exif)).shape == (40, 20, 3)


def test_sixteen_bit_grayscale_is_scaled_not_clipped() -> None:
    img = Image.fromarray(np.full((20, 20), 32768, dtype=np.uint16))
    value = load_image(encode(img, "PNG"))[0, 0]
    assert value.tolist() == [128.0, 128.0, 128.0]


def test_cmyk_converts_to_rgb() -> None:
    img = Image.new("CMYK", (20, 20), (0, 255, 255, 0))  # pure red in print colours
    pixels = load_image(encode(img, "JPEG"))
    assert pixels.shape == (20, 20, 3)
    np.testing.assert_allclose(pixels[10, 10], [255, 0, 0], atol=3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not an image"),
        (b"%PDF-1.4 not an image", "not an image"),
        (encode(Image.new("RGB", (64, 64)), "PNG")[:60], "damaged"),
    ],
)
def test_bad_bytes_are_refused_clearly(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        load_image(data)


@pytest.mark.parametrize(
    ("size", "message"), [((1, 1), "too small"), ((15, 300), "too small"), ((400, 20), "too long and thin")]
)
def test_degenerate_sizes_are_refused(size: tuple[int, int], message: str) -> None:
    with pytest.raises(ImageError, match=message):
        load_image(encode(Image.new("RGB", size), "PNG"))


def test_huge_claimed_size_is_refused_before_decoding() -> None:
    data = encode(Image.new("L", (3000, 3000)), "PNG")
    with pytest.raises(ImageError, match="too large"):
        load_image(data, max_pixels=1_000_000)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "nope.jpg")


def test_fit_long_side_keeps_aspect_and_never_upscales() -> None:
    img = np.zeros((100, 50, 3), dtype=np.float32)
    assert fit_long_side(img, 40).shape == (40, 20, 3)
    assert fit_long_side(img, 400).shape == (100, 50, 3)


def test_save_picks_format_from_suffix(tmp_path: Path) -> None:
    img = np.full((5, 6, 3), 100.0, dtype=np.float32)
    save_image(img, tmp_path / "a.jpg")
    save_image(img, tmp_path / "a.png")
    assert Image.open(tmp_path / "a.jpg").format == "JPEG"
    assert Image.open(tmp_path / "a.png").format == "PNG"
    with pytest.raises(ImageError, match="must end in"):
        save_image(img, tmp_path / "a.gif")
