"""A 40-megapixel photo costs the bot process little: its header is read, its pixels are not decoded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

# What the bot does with an upload before the job is queued, in a fresh process that measures its peak.
_INTAKE = """
import asyncio, resource, sys
from pathlib import Path
from bot.thumbnails import close, status_picture
from engine.images import inspect_image
path = Path(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
data = path.read_bytes()                        # the download, held as bytes
info = inspect_image(data, "it")                # validation from the header
thumbnail = asyncio.run(status_picture(path))   # the status picture
close()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(info.width, info.height, len(thumbnail), (after - before) // 1024)
"""


def test_a_40_megapixel_photo_grows_the_bot_by_less_than_300_mb(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    coarse = Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8))
    path = tmp_path / "phone.jpg"
    coarse.resize((7744, 5163), Image.Resampling.BICUBIC).save(path, "JPEG", quality=85)
    assert path.stat().st_size < 20 * 1024 * 1024  # still a file Telegram lets bots download

    done = subprocess.run(
        [sys.executable, "-c", _INTAKE, str(path)], capture_output=True, text=True, timeout=300, check=True
    )
    width, height, thumbnail_bytes, grown_mb = (int(v) for v in done.stdout.split())
    assert (width, height) == (7744, 5163)
    assert thumbnail_bytes > 0
    assert grown_mb < 300, f"the intake grew the process by {grown_mb} MB"
