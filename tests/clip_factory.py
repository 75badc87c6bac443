"""Small synthetic clips for tests: a bright square moving across a dark frame, in the containers and
codecs the bot meets (MP4/H.264, GIF, WebM/VP9) and some it must refuse, with sound, rotated, or damaged.

Every clip is made here with PyAV at test time, a few kilobytes each; nothing is checked in.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# FFmpeg's encoder for each codec name a test asks for, and the pixel format it is given.
ENCODERS = {
    "h264": ("libx264", "yuv420p"),
    "hevc": ("libx265", "yuv420p"),
    "vp8": ("libvpx", "yuv420p"),
    "vp9": ("libvpx-vp9", "yuv420p"),
    "mpeg4": ("mpeg4", "yuv420p"),
    "gif": ("gif", "rgb8"),
    "mjpeg": ("mjpeg", "yuvj420p"),
    "ffv1": ("ffv1", "yuv420p"),
}
# The container FFmpeg writes for each suffix.
CONTAINERS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".webm": "webm",
    ".mkv": "matroska",
    ".gif": "gif",
    ".avi": "avi",  # a container the engine refuses
}

BACKGROUND = 40  # grey level of the frame
SQUARE = (230, 200, 60)  # RGB of the square: bright on every channel after YUV 4:2:0 and GIF's palette


def square_side(size: tuple[int, int]) -> int:
    """The square's side for a frame of `size` = (width, height): a third of the short side."""
    return max(2, min(size) // 3)


def square_left(index: int, frames: int, size: tuple[int, int]) -> int:
    """The square's left edge in frame `index`: it moves from the left edge to the right one."""
    span = size[0] - square_side(size)
    return 0 if frames <= 1 else round(span * index / (frames - 1))


def square_frame(index: int, frames: int = 8, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    """Frame `index` of a clip of `frames` at `size` = (width, height): (H, W, 3) uint8 RGB."""
    width, height = size
    side = square_side(size)
    image = np.full((height, width, 3), BACKGROUND, np.uint8)
    left, top = square_left(index, frames, size), (height - side) // 2
    image[top : top + side, left : left + side] = SQUARE
    return image


def square_centre(frame: np.ndarray) -> tuple[float, float]:
    """Where the square is in a decoded (H, W, 3) frame: (x, y), the mean column and row of its pixels."""
    rows, columns = np.nonzero(frame.mean(axis=2) > (BACKGROUND + min(SQUARE)) / 2)
    return float(columns.mean()), float(rows.mean())


def write_test_clip(
    path: Path,
    frames: int = 8,
    size: tuple[int, int] = (64, 48),
    fps: float = 12,
    codec: str = "h264",
    audio: bool = False,
    rotation: int = 0,
) -> Path:
    """Write a clip of the moving square to `path` (the container follows its suffix) and return `path`.

    `audio` adds a silent AAC (Opus in WebM) track as long as the picture; `rotation` (degrees
    counter-clockwise) is stored as the stream's display matrix, as phones record, leaving the pixels as
    they are. MP4 and MOV are written with the index first (faststart), so the frames come last in the file.
    """
    encoder, pix_fmt = ENCODERS[codec]
    container_format = CONTAINERS[path.suffix.lower()]
    options = {"movflags": "+faststart"} if container_format in ("mp4", "mov") else {}
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w", format=container_format, options=options) as container:
        video = container.add_stream(encoder, rate=rate)
        video.width, video.height = size
        video.pix_fmt = pix_fmt
        if rotation:
            video.set_display_rotation(rotation)
        sound = None
        if audio:
            sound = container.add_stream("libopus" if container_format == "webm" else "aac", rate=48000)
            sound.layout = "mono"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(square_frame(index, frames, size), format="rgb24")
            frame.pts = index
            frame.time_base = 1 / rate
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if sound is not None:
            _write_silence(container, sound, frames / fps)
    return path


def _write_silence(container: av.container.OutputContainer, sound: av.AudioStream, seconds: float) -> None:
    samples, chunk = round(seconds * sound.rate), 960
    for start in range(0, samples, chunk):
        frame = av.AudioFrame.from_ndarray(np.zeros((1, chunk), np.float32), format="flt", layout="mono")
        frame.sample_rate, frame.pts = sound.rate, start
        container.mux(sound.encode(frame))
    container.mux(sound.encode())


def write_audio_only(path: Path, seconds: float = 1.0) -> Path:
    """A sound-only file (silent AAC in an MP4 container, as an .m4a is): a container with no picture."""
    with av.open(str(path), "w", format="mp4") as container:
        sound = container.add_stream("aac", rate=48000)
        sound.layout = "mono"
        _write_silence(container, sound, seconds)
    return path


def media_data_offset(path: Path) -> int:
    """Where an MP4's frames start: the first byte inside its `mdat` box."""
    data = path.read_bytes()
    at = data.index(b"mdat")
    return at + 4  # the box's 4-byte size sits before its name


def zero_frames(path: Path, keep: float = 0.0) -> Path:
    """Overwrite an MP4's frames with zeros past the first `keep` share of them, leaving its header
    (written first, see `write_test_clip`) intact: it still inspects, and fails to decode there."""
    data = bytearray(path.read_bytes())
    start = media_data_offset(path)
    cut = start + round((len(data) - start) * keep)
    data[cut:] = bytes(len(data) - cut)
    path.write_bytes(bytes(data))
    return path


def truncate(path: Path, share: float = 0.5) -> Path:
    """Cut the file to its first `share` of bytes, as an interrupted download leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: round(len(data) * share)])
    return path
