"""Status pictures: right for every kind of upload, and a big one never decoded whole in the bot process."""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from bot import thumbnails
from bot.thumbnails import THUMBNAIL_SIDE, ThumbnailError, made_here, status_picture
from tests.timing import scaled

# The bot process may grow by less than this while it checks an upload and makes its status picture.
BOT_GROWTH_LIMIT_MB = 100


@pytest.fixture(autouse=True)
def no_child_left() -> Iterator[None]:
    yield
    thumbnails.close()


@pytest.fixture(scope="module")
def flat_png_49_mp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A flat 49-megapixel PNG: a file of 0.6 MB that decodes to 196 MB (Pillow keeps RGB in 4 bytes)."""
    path = tmp_path_factory.mktemp("big") / "flat.png"
    Image.new("RGB", (8100, 6050), (200, 120, 40)).save(path, compress_level=1)
    return path


@pytest.fixture(scope="module")
def progressive_jpeg_40_mp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "progressive.jpg"
    Image.new("RGB", (7744, 5163), (40, 120, 200)).save(path, "JPEG", quality=80, progressive=True)
    return path


def smooth(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    """A smooth picture with structure that no turn or mirror leaves unchanged."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (5, 7, 4), dtype=np.uint8), "RGBA")
    return coarse.resize((width, height), Image.Resampling.BICUBIC).convert(mode)


def exif(orientation: int) -> Image.Exif:
    tags = Image.Exif()
    tags[0x0112] = orientation
    return tags


# (file name, picture, save options, made in the bot process)
CASES = {
    "baseline JPEG, 4 MP, turned": ("a.jpg", smooth(2400, 1600), {"exif": exif(6)}, True),
    "progressive JPEG, 4 MP, turned": (
        "b.jpg",
        smooth(2400, 1600),
        {"exif": exif(8), "progressive": True},
        False,
    ),
    "progressive JPEG, small": ("c.jpg", smooth(800, 600), {"progressive": True}, True),
    "CMYK JPEG": ("d.jpg", smooth(1800, 1200, "CMYK"), {}, True),
    "RGBA PNG, 2 MP, turned": ("e.png", smooth(1800, 1200, "RGBA"), {"exif": exif(3)}, False),
    "palette PNG, small": ("f.png", smooth(900, 700).quantize(256), {}, True),
    "16-bit PNG": ("g.png", smooth(1800, 1200, "L").convert("I;16"), {}, False),
    "WebP": ("h.webp", smooth(1800, 1200), {"quality": 90}, False),
}


@pytest.mark.parametrize("case", CASES)
async def test_a_status_picture_is_the_upright_picture_small_as_an_rgb_jpeg(
    tmp_path: Path, case: str
) -> None:
    name, picture, options, here = CASES[case]
    path = tmp_path / name
    picture.save(path, **options)
    assert made_here(path)[1] is here

    made = Image.open(io.BytesIO(await status_picture(path)))

    expected = Image.open(io.BytesIO(decoded_whole_then_reduced(path)))
    assert (made.format, made.mode, made.size) == ("JPEG", "RGB", expected.size)
    assert max(made.size) == THUMBNAIL_SIDE
    difference = np.abs(np.asarray(made, np.float32) - np.asarray(expected, np.float32)).mean()
    assert difference < 1.0, f"{difference:.2f} levels from the picture decoded whole"


def decoded_whole_then_reduced(path: Path) -> bytes:
    """The status picture made the plain way: decoded whole, turned upright, made RGB, then reduced."""
    with Image.open(path) as img:
        upright = ImageOps.exif_transpose(img).convert("RGB")
    upright.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    buffer = io.BytesIO()
    upright.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


async def test_an_unreadable_file_is_a_thumbnail_error(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(b"not a picture")
    with pytest.raises(ThumbnailError, match=r"a\.png: no status picture"):
        await status_picture(path)


# What the bot process does with each upload, in a fresh process that reads its own peak (VmHWM) around
# each step: the check at download (engine.images.inspect_image) and the status picture.
_BOT_PATH = """
import asyncio, io, sys
from pathlib import Path
from PIL import Image
from bot.thumbnails import status_picture
from engine.images import inspect_image

def kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))

for path in map(Path, sys.argv[1:]):
    data = path.read_bytes()
    before = kib("VmRSS")
    info = inspect_image(data, "it")
    checked = kib("VmHWM") - before
    before = kib("VmRSS")
    thumbnail = asyncio.run(status_picture(path))
    pictured = kib("VmHWM") - before
    print(info.width, info.height, *Image.open(io.BytesIO(thumbnail)).size, checked // 1024, pictured // 1024)
"""


def test_a_49_mp_png_and_a_40_mp_progressive_jpeg_each_cost_the_bot_process_under_100_mb(
    flat_png_49_mp: Path, progressive_jpeg_40_mp: Path
) -> None:
    pictures = [flat_png_49_mp, progressive_jpeg_40_mp]
    assert [made_here(path)[1] for path in pictures] == [False, False]

    done = subprocess.run(
        [sys.executable, "-c", _BOT_PATH, *map(str, pictures)],
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=True,
    )

    for path, line in zip(pictures, done.stdout.splitlines(), strict=True):
        width, height, thumb_width, thumb_height, checked_mb, pictured_mb = map(int, line.split())
        with Image.open(path) as img:
            assert (width, height) == img.size
        assert max(thumb_width, thumb_height) == THUMBNAIL_SIDE
        # A higher peak before a step only raises its figure: each bounds that step's cost from above.
        assert checked_mb < BOT_GROWTH_LIMIT_MB, f"{path.name}: inspect_image grew the bot by {checked_mb} MB"
        assert pictured_mb < BOT_GROWTH_LIMIT_MB, (
            f"{path.name}: its status picture grew the bot by {pictured_mb} MB"
        )


async def test_a_child_killed_while_it_decodes_fails_that_picture_and_the_next_call_starts_another(
    flat_png_49_mp: Path, tmp_path: Path
) -> None:
    small = tmp_path / "small.png"
    smooth(1800, 1200).save(small)
    await status_picture(small)
    [child] = multiprocessing.active_children()

    task = asyncio.create_task(status_picture(flat_png_49_mp))
    # Killed once the decode holds over 100 MB, as the kernel's OOM killer would pick it.
    deadline = asyncio.get_running_loop().time() + scaled(30)
    while resident_mb(child.pid) < 100:
        assert not task.done()
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.005)
    os.kill(child.pid, signal.SIGKILL)

    with pytest.raises(ThumbnailError, match="no status picture"):
        await task
    made = Image.open(io.BytesIO(await status_picture(small)))
    assert made.size == (THUMBNAIL_SIDE, 213)
    [replacement] = multiprocessing.active_children()
    assert replacement.pid != child.pid


async def test_the_child_imports_only_pillow_and_close_stops_it(tmp_path: Path) -> None:
    path = tmp_path / "a.webp"
    smooth(1800, 1200).save(path)
    await status_picture(path)
    [child] = multiprocessing.active_children()
    libraries = proc(child.pid, "maps")
    assert "/PIL/" in libraries
    assert "numpy" not in libraries
    assert "tensorflow" not in libraries

    thumbnails.close()

    assert multiprocessing.active_children() == []
    with pytest.raises(FileNotFoundError):
        proc(child.pid, "status")  # exited and reaped
    await status_picture(path)  # a bot started again in the same process spawns a new child
    [replacement] = multiprocessing.active_children()
    assert replacement.pid != child.pid


def proc(pid: int, name: str) -> str:
    return Path(f"/proc/{pid}/{name}").read_text()


def resident_mb(pid: int) -> float:
    status = proc(pid, "status").splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024
