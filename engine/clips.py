"""Clips in and out: a GIF or short video checked from its container's header, read as (H, W, 3) float32
RGB frames one at a time, and painted frames written as a silent H.264 MP4 (what Telegram loops as an
animation). PyAV runs the FFmpeg its wheels bring, restricted to the demuxers and decoders listed here.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from contextlib import ExitStack
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import av.error
import numpy as np

from engine.host.files import replacing
from engine.images import to_uint8

# Suffixes read as clips (the bot stores a clip under the suffix `ClipInfo.suffix` gives).
CLIP_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv", ".gif"})
# Frames painted per second at most: animation "on twos" (12 of film's 24) halves the painting of a
# 24-fps clip and still reads as motion; a clip with fewer keeps its own rate.
CLIP_FPS = 12.0

# The only demuxers and decoders FFmpeg may run on a user's file (its other few hundred parse formats
# nobody sends a bot), and only the local file protocol (a playlist cannot make it fetch a URL).
# Each demuxer's container as ClipInfo names it, and the suffix a clip of it is stored under.
DEMUXERS = {
    "mov,mp4,m4a,3gp,3g2,mj2": ("mp4", ".mp4"),
    "matroska,webm": ("matroska", ".mkv"),
    "gif": ("gif", ".gif"),
}
DECODERS = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "libdav1d", "mpeg4", "gif"})
# FFmpeg's probe of the streams (avformat_find_stream_info) reads packets until it knows each stream; the
# smallest probe stops it after the first, since everything used here (size, codec, rate, duration) is in
# the header of the containers allowed. Decoders of other codecs are not even opened for the probe.
OPEN_OPTIONS = {
    "protocol_whitelist": "file",
    "format_whitelist": ",".join(DEMUXERS),
    "codec_whitelist": ",".join(sorted(DECODERS)),
    "probesize": "32",
    "analyzeduration": "0",
}
# A frame is kept when it reaches its slot at the painted rate, give or take this share of a slot:
# containers round times (WebM to milliseconds), and frame 2 of a 24-fps WebM sits at 0.083 s, not 1/12.
SLOT_TOLERANCE = 0.1
# x264's constant quality: 18 is near the eye's threshold, so a painting's brush strokes survive it, and a
# few seconds at the sizes painted stay a few megabytes, far below Telegram's 50 MB for animations.
CRF = 18


def is_clip(path: Path) -> bool:
    """Whether `path` is read as a clip, by its suffix."""
    return path.suffix.lower() in CLIP_SUFFIXES


class ClipProblem(StrEnum):
    """Why a clip was refused, for a caller to word in its own voice (the bot's texts)."""

    UNREADABLE = "unreadable"  # not a container FFmpeg opens, or damaged
    NO_VIDEO = "no_video"  # no video stream
    UNSUPPORTED = "unsupported"  # a codec or container outside the allowed ones
    TOO_LONG = "too_long"  # longer than limits.max_seconds
    TOO_LARGE = "too_large"  # a side over limits.max_side
    TOO_SMALL = "too_small"  # a side under limits.min_side


class ClipError(ValueError):
    """The clip cannot be used: `kind` says why; its text is a plain English sentence naming the file."""

    def __init__(
        self, kind: ClipProblem, message: str, limit: float | None = None, value: float | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.limit = limit  # the limit it broke: seconds, or pixels of a side
        self.value = value  # the clip's own number, in the limit's unit

    def __reduce__(self) -> tuple[type[ClipError], tuple[object, ...]]:
        # Rebuilt from all its fields, not just the message, when it crosses to another process.
        return type(self), (self.kind, str(self), self.limit, self.value)


@dataclass(frozen=True)
class ClipLimits:
    max_seconds: float = 60.0  # the longest clip accepted
    max_side: int = 1920  # of the source (decoding cost and memory), not of the painting
    min_side: int = 16  # the network has nothing to see below this (as for pictures)


@dataclass(frozen=True)
class ClipInfo:
    width: int  # pixels as coded: PyAV 18 gives no stream's display matrix, so a rotated clip's sides are
    height: int  # swapped here; `read_frames` turns each frame upright from the frame's own matrix
    seconds: float  # the video stream's duration
    fps: float  # the source's average frame rate
    codec: str  # FFmpeg's decoder name, e.g. "h264"
    container: str  # e.g. "mp4"
    suffix: str  # the suffix to store it under, e.g. ".mp4"

    def painted_fps(self) -> float:
        """Frames painted per second: the source's rate, at most `CLIP_FPS`."""
        return min(self.fps, CLIP_FPS)

    @property
    def frames(self) -> int:
        """Frames painted: one per painted slot of the clip's duration, at least one."""
        return max(1, math.ceil(self.seconds * self.painted_fps() - 1e-6))


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), "r", container_options=OPEN_OPTIONS)
    except av.error.ArgumentError as error:
        # FFmpeg recognised the file but its demuxer is not on the whitelist.
        message = f"{path.name}: not a container the engine reads (MP4, MOV, WebM, MKV or GIF)"
        raise ClipError(ClipProblem.UNSUPPORTED, message) from error
    except (av.error.FFmpegError, OSError) as error:
        raise ClipError(ClipProblem.UNREADABLE, f"{path.name}: cannot be read as a video: {error}") from error


def _video(container: av.container.InputContainer, path: Path) -> av.VideoStream:
    """The clip's video stream, once its decoder is known to be one of the allowed."""
    if not container.streams.video:
        raise ClipError(ClipProblem.NO_VIDEO, f"{path.name}: has no video")
    stream = container.streams.video[0]
    codec = stream.codec_context.name if stream.codec_context is not None else stream.codec_tag
    if codec not in DECODERS:
        message = f"{path.name}: its video is {codec}, not H.264, HEVC, VP8, VP9, AV1, MPEG-4 or GIF"
        raise ClipError(ClipProblem.UNSUPPORTED, message)
    return stream


def _rate(stream: av.VideoStream) -> float | None:
    rate = stream.average_rate or stream.guessed_rate
    return float(rate) if rate else None


def _seconds(container: av.container.InputContainer, stream: av.VideoStream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    rate = _rate(stream)
    return stream.frames / rate if stream.frames and rate else None


def inspect_clip(source: Path, limits: ClipLimits = ClipLimits()) -> ClipInfo:
    """Check a clip from its container's header (no frame decoded) and describe it; raise `ClipError`."""
    with _open(source) as container:
        stream = _video(container, source)
        seconds, rate = _seconds(container, stream), _rate(stream)
        if not seconds or not rate:
            message = f"{source.name}: its header gives no {'frame rate' if seconds else 'duration'}"
            raise ClipError(ClipProblem.UNREADABLE, message)
        info = ClipInfo(
            width=stream.width,
            height=stream.height,
            seconds=seconds,
            fps=rate,
            codec=stream.codec_context.name,
            container=DEMUXERS[container.format.name][0],
            suffix=DEMUXERS[container.format.name][1],
        )
    short, long = sorted((info.width, info.height))
    if short < limits.min_side:
        message = f"{source.name}: {info.width}×{info.height} is under {limits.min_side} px on a side"
        raise ClipError(ClipProblem.TOO_SMALL, message, limits.min_side, short)
    if long > limits.max_side:
        message = f"{source.name}: {info.width}×{info.height} is over {limits.max_side} px on a side"
        raise ClipError(ClipProblem.TOO_LARGE, message, limits.max_side, long)
    if info.seconds > limits.max_seconds:
        message = f"{source.name}: {info.seconds:.1f} s is longer than {limits.max_seconds:g} s"
        raise ClipError(ClipProblem.TOO_LONG, message, limits.max_seconds, info.seconds)
    return info


def frame_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) a frame is read at: long side at most `max_side`, never enlarged, both even."""
    scale = min(1.0, max_side / max(width, height))
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def read_frames(path: Path, max_side: int, fps: float | None = None) -> Generator[np.ndarray, None, None]:
    """Decode `path` one frame at a time as (H, W, 3) float32 RGB 0..255, upright, sized by `frame_size`,
    keeping the frames that reach each slot of `fps` (default: the clip's painted rate, as `ClipInfo`
    says) by their presentation times; raise `ClipError` where the clip is damaged."""
    with _open(path) as container:
        stream = _video(container, path)
        source_rate = _rate(stream) or CLIP_FPS
        step = 1.0 / (fps or min(source_rate, CLIP_FPS))
        start: float | None = None
        next_slot, index = 0, 0
        try:
            for frame in container.decode(stream):
                time = frame.time if frame.time is not None else index / source_rate
                index += 1
                start = time if start is None else start
                slot = math.floor((time - start) / step + SLOT_TOLERANCE)
                if slot < next_slot:
                    continue
                next_slot = slot + 1
                yield _picture(frame, max_side)
        except av.error.FFmpegError as error:
            message = f"{path.name}: damaged after {index} frames: {error}"
            raise ClipError(ClipProblem.UNREADABLE, message) from error
    if index == 0:
        raise ClipError(ClipProblem.UNREADABLE, f"{path.name}: no frame could be decoded")


def _picture(frame: av.VideoFrame, max_side: int) -> np.ndarray:
    """One decoded frame as (H, W, 3) float32, upright and sized; the odd last row or column cropped."""
    turns = round(frame.rotation / 90) % 4  # counter-clockwise quarter turns that show it upright
    width, height = frame.width, frame.height
    if max(width, height) > max_side:
        width, height = frame_size(width, height, max_side)
        rgb = frame.reformat(width, height, format="rgb24", interpolation="LANCZOS").to_ndarray()
    else:
        rgb = frame.to_ndarray(format="rgb24")[: height // 2 * 2, : width // 2 * 2]  # (H, W, 3) uint8
    return np.rot90(rgb, turns).astype(np.float32)


def first_frame(path: Path, max_side: int) -> np.ndarray:
    """The clip's first frame, as `read_frames` gives it (only that frame is decoded)."""
    frames = read_frames(path, max_side)
    try:
        return next(frames)
    finally:
        frames.close()


class ClipWriter:
    """Write frames as an H.264 (libx264, yuv420p) MP4 with no sound, its index first (faststart), so
    Telegram plays it as it downloads; into a temporary file renamed into place on a clean exit.

    The first frame sets the size (an odd side loses its last row or column: 4:2:0 halves both); every
    frame after it must match.
    """

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.rate = Fraction(fps).limit_denominator(1001)
        self._stack = ExitStack()
        self._container: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None
        self._count = 0

    def __enter__(self) -> ClipWriter:
        with ExitStack() as stack:  # unwound here if the container cannot be opened
            tmp = stack.enter_context(replacing(self.path))
            self._container = av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"})
            stack.callback(self._container.close)
            self._stack = stack.pop_all()
        return self

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) RGB frame in 0..255."""
        if self._container is None:
            raise RuntimeError("ClipWriter is written to inside its `with` block")
        height, width = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2
        if self._stream is None:
            self._stream = self._container.add_stream("libx264", rate=self.rate, options={"crf": str(CRF)})
            self._stream.width, self._stream.height = width, height
            self._stream.pix_fmt = "yuv420p"
        elif (width, height) != (self._stream.width, self._stream.height):
            size = f"{self._stream.width}×{self._stream.height}"
            raise ValueError(f"frame {self._count + 1} is {width}×{height}, the clip is {size}")
        picture = av.VideoFrame.from_ndarray(to_uint8(frame[:height, :width]), format="rgb24")
        picture.pts = self._count
        picture.time_base = 1 / self.rate
        self._container.mux(self._stream.encode(picture))
        self._count += 1

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if error is None:
            try:
                self._finish()
            except BaseException as failure:
                self._stack.__exit__(type(failure), failure, failure.__traceback__)
                raise
        # On an error `replacing` removes the temporary file; otherwise it renames it into place.
        self._stack.__exit__(kind, error, trace)

    def _finish(self) -> None:
        if self._stream is None or self._container is None:
            raise ValueError(f"{self.path.name}: no frame was written")
        self._container.mux(self._stream.encode())  # the frames x264 still holds (its lookahead)
        self._container.close()
