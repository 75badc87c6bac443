"""Clips in and out: header checks, frame-by-frame reading, and the H.264 MP4 writer."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from engine.clips import (
    CLIP_FPS,
    ClipError,
    ClipInfo,
    ClipLimits,
    ClipProblem,
    ClipWriter,
    first_frame,
    inspect_clip,
    is_clip,
    read_frames,
)
from tests.clip_factory import (
    square_centre,
    square_frame,
    truncate,
    write_audio_only,
    write_test_clip,
    zero_frames,
)


def test_is_clip_by_suffix() -> None:
    assert [is_clip(Path(name)) for name in ("a.MP4", "b.gif", "c.webm", "d.jpg", "e")] == [
        True,
        True,
        True,
        False,
        False,
    ]


def test_mp4_header(tmp_path: Path) -> None:
    clip = write_test_clip(tmp_path / "a.mp4", frames=24, size=(64, 48), fps=24)
    info = inspect_clip(clip)
    assert info == ClipInfo(64, 48, 1.0, 24.0, "h264", "mp4", ".mp4")
    assert (info.painted_fps(), info.frames) == (CLIP_FPS, 12)


def test_gif_header(tmp_path: Path) -> None:
    # GIF counts delays in hundredths of a second: 10 fps is exact.
    clip = write_test_clip(tmp_path / "a.gif", frames=5, size=(40, 30), fps=10, codec="gif")
    info = inspect_clip(clip)
    assert info == ClipInfo(40, 30, 0.5, 10.0, "gif", "gif", ".gif")
    assert (info.painted_fps(), info.frames) == (10.0, 5)


def test_webm_with_sound_is_read_for_its_picture(tmp_path: Path) -> None:
    clip = write_test_clip(tmp_path / "a.webm", frames=12, fps=12, codec="vp9", audio=True)
    info = inspect_clip(clip)
    assert (info.codec, info.container, info.suffix, info.fps) == ("vp9", "matroska", ".mkv", 12.0)
    assert info.seconds == pytest.approx(1.0, abs=0.02)
    assert len(list(read_frames(clip, 64))) == 12


@pytest.mark.parametrize(
    ("limits", "kind", "limit", "value"),
    [
        (ClipLimits(max_seconds=0.5), ClipProblem.TOO_LONG, 0.5, 1.0),
        (ClipLimits(max_side=60), ClipProblem.TOO_LARGE, 60, 64),
        (ClipLimits(min_side=50), ClipProblem.TOO_SMALL, 50, 48),
    ],
)
def test_each_limit_is_refused_with_its_numbers(
    tmp_path: Path, limits: ClipLimits, kind: ClipProblem, limit: float, value: float
) -> None:
    clip = write_test_clip(tmp_path / "a.mp4", frames=12, size=(64, 48), fps=12)
    with pytest.raises(ClipError) as caught:
        inspect_clip(clip, limits)
    assert (caught.value.kind, caught.value.limit, caught.value.value) == (kind, limit, value)


def test_the_defaults_accept_a_clip_within_them(tmp_path: Path) -> None:
    clip = write_test_clip(tmp_path / "a.mp4", frames=2, size=(16, 16), fps=12)
    assert (inspect_clip(clip).width, inspect_clip(clip).height) == (16, 16)


@pytest.mark.parametrize(
    ("name", "make", "kind"),
    [
        ("cut.mp4", lambda p: truncate(write_test_clip(p, frames=24), 0.3), ClipProblem.UNREADABLE),
        ("junk.mp4", lambda p: p.write_bytes(b"not a video at all" * 50), ClipProblem.UNREADABLE),
        ("missing.mp4", lambda p: None, ClipProblem.UNREADABLE),
        ("sound.m4a", write_audio_only, ClipProblem.NO_VIDEO),
        ("ffv1.mkv", lambda p: write_test_clip(p, codec="ffv1"), ClipProblem.UNSUPPORTED),
        ("mjpeg.mkv", lambda p: write_test_clip(p, codec="mjpeg"), ClipProblem.UNSUPPORTED),
        ("a.avi", lambda p: write_test_clip(p, codec="mpeg4"), ClipProblem.UNSUPPORTED),
    ],
)
def test_a_file_that_is_not_an_allowed_clip_is_refused(
    tmp_path: Path, name: str, make: Callable[[Path], object], kind: ClipProblem
) -> None:
    path = tmp_path / name
    make(path)
    with pytest.raises(ClipError) as caught:
        inspect_clip(path)
    assert caught.value.kind == kind
    assert name in str(caught.value)


def test_inspect_reads_the_header_only(tmp_path: Path) -> None:
    clip = write_test_clip(tmp_path / "a.mp4", frames=24, fps=24)
    intact = inspect_clip(clip)
    zero_frames(clip)  # every frame's bytes zeroed, the header left as it was
    assert inspect_clip(clip) == intact
    with pytest.raises(ClipError) as caught:
        list(read_frames(clip, 64))
    assert caught.value.kind == ClipProblem.UNREADABLE


def test_read_frames_is_lazy(tmp_path: Path) -> None:
    clip = zero_frames(write_test_clip(tmp_path / "a.mp4", frames=48, fps=24), keep=0.6)
    frames = read_frames(clip, 64)
    assert next(frames).shape == (48, 64, 3)
    assert first_frame(clip, 32).shape == (24, 32, 3)
    with pytest.raises(ClipError, match="damaged after") as caught:
        list(frames)
    assert caught.value.kind == ClipProblem.UNREADABLE


def test_frames_are_float_rgb_and_the_square_moves(tmp_path: Path) -> None:
    clip = write_test_clip(tmp_path / "a.mp4", frames=8, size=(64, 48), fps=12)
    frames = list(read_frames(clip, 64))
    assert len(frames) == 8
    assert {(f.shape, f.dtype) for f in frames} == {((48, 64, 3), np.dtype(np.float32))}
    xs = [square_centre(f)[0] for f in frames]
    assert xs == sorted(xs)
    assert xs[-1] - xs[0] > 30  # from the left edge to the right one
    assert np.abs(frames[3] - square_frame(3, 8, (64, 48))).mean() < 3


@pytest.mark.parametrize(
    ("size", "max_side", "shape"),
    [
        ((64, 48), 32, (24, 32)),  # scaled down
        ((63, 47), 512, (46, 62)),  # never enlarged; the odd row and column cropped
        ((100, 30), 51, (14, 50)),  # scaled, then both sides even
    ],
)
def test_frames_are_sized_even_and_never_enlarged(
    tmp_path: Path, size: tuple[int, int], max_side: int, shape: tuple[int, int]
) -> None:
    clip = write_test_clip(tmp_path / "a.mp4", frames=2, size=size, codec="mpeg4")
    assert {f.shape for f in read_frames(clip, max_side)} == {(*shape, 3)}


def test_frames_are_dropped_to_the_painted_rate(tmp_path: Path) -> None:
    clip = write_test_clip(tmp_path / "a.mp4", frames=48, size=(32, 32), fps=24)
    assert len(list(read_frames(clip, 32, fps=12))) in (23, 24, 25)
    assert len(list(read_frames(clip, 32))) == inspect_clip(clip).frames == 24
    assert len(list(read_frames(clip, 32, fps=30))) == 48  # a slower source keeps every frame


def test_a_rotated_clip_is_read_upright(tmp_path: Path) -> None:
    # Stored landscape with a quarter turn counter-clockwise to show: the square then moves upwards.
    clip = write_test_clip(tmp_path / "a.mp4", frames=8, size=(64, 48), fps=12, rotation=90)
    frames = list(read_frames(clip, 64))
    assert frames[0].shape == (64, 48, 3)
    ys = [square_centre(f)[1] for f in frames]
    assert ys == sorted(ys, reverse=True)


def test_written_clip_round_trips(tmp_path: Path) -> None:
    source = write_test_clip(tmp_path / "in.mp4", frames=12, size=(64, 48), fps=12)
    out = tmp_path / "out.mp4"
    write_clip(out, list(read_frames(source, 64)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]  # no temporary file left
    before, after = list(read_frames(source, 64)), list(read_frames(out, 64))
    assert len(after) == 12
    assert np.mean([np.abs(a - b).mean() for a, b in zip(before, after, strict=True)]) < 2.0
    with av.open(str(out)) as container:
        assert [s.type for s in container.streams] == ["video"]  # no sound
        video = container.streams.video[0]
        assert (video.codec_context.name, video.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert video.average_rate == 12
        assert container.format.name.startswith("mov,mp4")
    data = out.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # faststart: the index comes first


def test_writer_crops_an_odd_side(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    write_clip(out, [square_frame(index, 3, (63, 47)).astype(np.float32) for index in range(3)], fps=10)
    info = inspect_clip(out)
    assert (info.width, info.height, info.fps, info.seconds) == (62, 46, 10.0, 0.3)


def write_clip(path: Path, frames: list[np.ndarray], fps: float = 12, fail: bool = False) -> None:
    """Write `frames` with a ClipWriter; with `fail`, the block raises after them, as a failed job does."""
    with ClipWriter(path, fps) as writer:
        for frame in frames:
            writer.write(frame)
        if fail:
            raise RuntimeError("painting failed")


def test_writer_refuses_a_frame_of_another_size(tmp_path: Path) -> None:
    frames = [np.zeros((16, 16, 3), np.float32), np.zeros((32, 16, 3), np.float32)]
    with pytest.raises(ValueError, match="frame 2"):
        write_clip(tmp_path / "out.mp4", frames)
    assert list(tmp_path.iterdir()) == []


def test_nothing_is_left_when_writing_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="painting failed"):
        write_clip(tmp_path / "out.mp4", [np.zeros((16, 16, 3), np.float32)], fail=True)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="no frame"):
        write_clip(tmp_path / "out.mp4", [])
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous")
    with pytest.raises(RuntimeError):
        write_clip(out, [np.zeros((16, 16, 3), np.float32)], fail=True)
    assert out.read_bytes() == b"previous"


def test_clip_error_crosses_processes_whole() -> None:
    error = ClipError(ClipProblem.TOO_LONG, "a.mp4: 90.0 s is longer than 60 s", 60.0, 90.0)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.kind, str(copy), copy.limit, copy.value) == (error.kind, str(error), 60.0, 90.0)
