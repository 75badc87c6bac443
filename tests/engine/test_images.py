"""Image decoding and colour conversion."""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.images import (
    MAX_ASPECT,
    MIN_SIDE,
    ImageError,
    ImageInfo,
    ImageProblem,
    fit_long_side,
    inspect_image,
    load_image,
    preserve_colors,
    rgb_to_ycbcr,
    save_image,
    to_uint8,
    ycbcr_to_rgb,
)
from tests.engine.conftest import smooth_image


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


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A photo-like RGB picture: smooth structure at several scales plus a little grain."""
    return Image.fromarray(to_uint8(smooth_image(height, width, seed)), "RGB")


def jpeg_with_orientation(img: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(img, "JPEG", exif=exif, quality=95)


def test_inspect_reports_format_upright_size_and_frames() -> None:
    img = photo(60, 40)
    frames = [img, img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    animated = encode(img, "WEBP", save_all=True, append_images=frames[1:], duration=100)
    assert inspect_image(encode(img, "PNG"), "it") == ImageInfo("PNG", 60, 40, 1)
    assert inspect_image(jpeg_with_orientation(img, 6), "it") == ImageInfo("JPEG", 40, 60, 1)
    assert inspect_image(jpeg_with_orientation(img, 3), "it") == ImageInfo("JPEG", 60, 40, 1)
    assert inspect_image(animated, "it") == ImageInfo("WEBP", 60, 40, 2)
    # A phone's multi-picture file is a JPEG with more pictures after it.
    assert inspect_image(encode(img, "MPO", save_all=True, append_images=frames[1:]), "it") == ImageInfo(
        "JPEG", 60, 40, 2
    )


def test_inspect_reads_files_too(tmp_path: Path) -> None:
    (tmp_path / "a.webp").write_bytes(encode(photo(30, 50), "WEBP"))
    assert inspect_image(tmp_path / "a.webp") == ImageInfo("WEBP", 30, 50, 1)
    with pytest.raises(ImageError, match=r"nope\.png does not exist"):
        inspect_image(tmp_path / "nope.png")


def webp_claiming(width: int, height: int) -> bytes:
    """The start of an extended WebP whose canvas claims `width`×`height`."""
    vp8x = b"VP8X" + (10).to_bytes(4, "little") + bytes(4)
    vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + (len(vp8x) + 4).to_bytes(4, "little") + b"WEBP" + vp8x


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not an image"),
        (encode(photo(64, 64), "JPEG")[:400], "damaged"),
        (encode(photo(64, 64), "PNG")[:-200], "damaged"),
        (encode(photo(64, 64), "WEBP")[:-20], "damaged"),
        (encode(Image.new("RGB", (15, 300)), "PNG"), "too small"),
        (encode(Image.new("RGB", (400, 20)), "PNG"), "too long and thin"),
        (webp_claiming(16000, 16000), "too large"),
    ],
)
def test_inspect_refuses_what_load_would(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=f"^it is {message}"):
        inspect_image(data, "it")
    with pytest.raises(ImageError, match=f"^it is {message}"):
        load_image(data, name="it")


def test_inspect_refuses_a_huge_claimed_size() -> None:
    data = encode(Image.new("L", (3000, 3000)), "PNG")
    with pytest.raises(ImageError, match="too large"):
        inspect_image(data, "it", max_pixels=1_000_000)


class _Spy:
    """A Pillow plugin that would accept anything, recording every file it is offered."""

    def __init__(self) -> None:
        self.offered: list[bytes] = []

    def accept(self, prefix: bytes) -> bool:
        self.offered.append(prefix)
        return False


@pytest.fixture
def spy() -> Iterator[_Spy]:
    spy = _Spy()
    Image.init()
    Image.register_open("SPY", lambda fp, filename: Image.new("RGB", (1, 1)), spy.accept)  # type: ignore[arg-type,return-value]
    Image.ID.insert(0, Image.ID.pop())  # first in line: an unrestricted open offers it every file
    try:
        yield spy
    finally:
        Image.OPEN.pop("SPY", None)
        Image.ID.remove("SPY")


@pytest.mark.parametrize("fmt", ["EPS", "GIF", "BMP", "TIFF"])
def test_other_formats_are_refused_without_trying_any_other_decoder(fmt: str, spy: _Spy) -> None:
    data = encode(photo(40, 40), fmt)
    with Image.open(io.BytesIO(data)) as img:  # what an unrestricted open makes of it
        assert img.format == fmt
    spy.offered.clear()
    with pytest.raises(ImageError, match=r"^it is not an image that can be read$"):
        inspect_image(data, "it")
    with pytest.raises(ImageError, match=r"^it is not an image that can be read$"):
        load_image(data, name="it")
    assert spy.offered == []
    with Image.open(io.BytesIO(data)):
        assert spy.offered == [data[:16]]  # the spy works: without `formats`, it would have seen the file


# Pictures well above the output size, in each allowed format and with EXIF turns, as the worker gets them.
LARGE_INPUTS = [
    *(("JPEG", orientation) for orientation in range(1, 9)), ("PNG", 1), ("WEBP", 1), ("RGBA", 1), ("L16", 1),
]  # fmt: skip


def large_input(kind: str, orientation: int) -> bytes:
    img = photo(1400, 900, seed=3)
    if kind == "JPEG":
        return jpeg_with_orientation(img, orientation)
    if kind == "RGBA":
        rgba = np.asarray(img.convert("RGBA")).copy()
        rgba[..., 3] = np.linspace(0, 255, rgba.shape[1], dtype=np.uint8)[np.newaxis]
        return encode(Image.fromarray(rgba, "RGBA"), "PNG")
    if kind == "L16":
        return encode(Image.fromarray(np.asarray(img.convert("L")).astype(np.uint16) * 257), "PNG")
    return encode(img, kind, **({"lossless": True} if kind == "WEBP" else {}))


@pytest.mark.parametrize(("kind", "orientation"), LARGE_INPUTS)
@pytest.mark.parametrize("max_side", [512, 100])
def test_reduced_decode_matches_a_full_decode_then_resize(kind: str, orientation: int, max_side: int) -> None:
    data = large_input(kind, orientation)
    reduced = load_image(data, max_side=max_side)
    full = fit_long_side(load_image(data), max_side)
    assert reduced.shape == full.shape
    assert reduced.dtype == np.float32
    assert float(np.abs(reduced - full).mean()) < 2.0


def test_max_side_never_enlarges() -> None:
    data = encode(photo(80, 50), "PNG")
    np.testing.assert_array_equal(load_image(data, max_side=512), load_image(data))


@pytest.mark.parametrize(
    ("data", "kind", "numbers"),
    [
        (b"%PDF-1.4 not an image", ImageProblem.UNREADABLE, (None, None, None)),
        (encode(Image.new("RGB", (64, 64)), "PNG")[:60], ImageProblem.DAMAGED, (None, None, None)),
        (encode(Image.new("RGB", (12, 30)), "PNG"), ImageProblem.TOO_SMALL, (12, 30, MIN_SIDE)),
        (encode(Image.new("RGB", (400, 20)), "PNG"), ImageProblem.TOO_THIN, (400, 20, MAX_ASPECT)),
        (encode(Image.new("L", (3000, 3000)), "PNG"), ImageProblem.TOO_LARGE, (None, None, 1_000_000)),
    ],
)
def test_refusal_says_why_with_the_numbers_a_message_needs(
    data: bytes, kind: ImageProblem, numbers: tuple[int | None, int | None, float | None]
) -> None:
    with pytest.raises(ImageError) as caught:
        load_image(data, max_pixels=1_000_000, name="it")
    assert (caught.value.kind, caught.value.name) == (kind, "it")
    assert (caught.value.width, caught.value.height, caught.value.limit) == numbers


def test_missing_file_and_folder_are_missing(tmp_path: Path) -> None:
    for source in (tmp_path / "nope.png", tmp_path):
        with pytest.raises(ImageError) as caught:
            inspect_image(source)
        assert caught.value.kind is ImageProblem.MISSING


def test_refusal_survives_pickling_whole() -> None:
    with pytest.raises(ImageError) as caught:
        load_image(encode(Image.new("RGB", (12, 30)), "PNG"), name="it")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (str(copy), copy.kind, copy.name, copy.width, copy.height, copy.limit) == (
        str(caught.value),
        ImageProblem.TOO_SMALL,
        "it",
        12,
        30,
        MIN_SIDE,
    )


def test_unwritable_output_format_is_its_own_kind(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as caught:
        save_image(np.zeros((4, 4, 3), dtype=np.float32), tmp_path / "a.gif")
    assert caught.value.kind is ImageProblem.NOT_ALLOWED_FORMAT
    assert list(tmp_path.iterdir()) == []
