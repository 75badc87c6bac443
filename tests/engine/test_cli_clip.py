"""`neural-style clip.mp4 style.png -o out.mp4`: clips painted from the command line, in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from engine.cli import main
from engine.clips import inspect_clip, read_frames
from tests.clip_factory import write_test_clip
from tests.engine.test_cli import own_precision_cache, precision_cache, tiny_decoder_file, write_image

__all__ = ["own_precision_cache", "precision_cache", "tiny_decoder_file"]  # the CLI tests' fixtures

FRAMES = 4


@pytest.fixture
def clip_and_style(tmp_path: Path) -> tuple[Path, Path]:
    clip = write_test_clip(tmp_path / "clip.mp4", frames=FRAMES, size=(64, 48), fps=12)
    return clip, write_image(tmp_path / "style.png", 20, 20, 2)


def run(*args: str | Path) -> int:
    return main([str(a) for a in args])


@pytest.mark.parametrize("fast", [False, True], ids=["painted", "fast"])
def test_a_clip_is_painted_to_an_mp4_with_an_estimate_and_no_sound(
    tmp_path: Path,
    clip_and_style: tuple[Path, Path],
    tiny_weights_file: Path,
    tiny_decoder_file: Path,
    capsys: pytest.CaptureFixture[str],
    fast: bool,
) -> None:
    clip, style = clip_and_style
    out = tmp_path / "painted.mp4"
    weights = ("--network", tiny_weights_file, "--decoder", tiny_decoder_file)
    mode = ("--fast",) if fast else ("--iterations", "3", "--frame-iterations", "2", "--initial", "adain")

    code = run(clip, style, "-o", out, *weights, "--max-size", "32", *mode)

    assert code == 0
    info = inspect_clip(out)
    assert (info.width, info.height) == (32, 24)
    assert len(list(read_frames(out, 64))) == FRAMES
    captured = capsys.readouterr()
    assert captured.out == f"wrote {out} ({FRAMES} frames, {'fast' if fast else 'painted'}, no sound)\n"
    assert "sound is dropped" in captured.err
    assert ("min (4 frames)" in captured.err) is not fast  # the painted clip's estimate


def test_a_picture_output_of_a_clip_paints_its_first_frame(
    tmp_path: Path, clip_and_style: tuple[Path, Path], tiny_weights_file: Path
) -> None:
    clip, style = clip_and_style
    out = tmp_path / "first.png"

    assert run(clip, style, "-o", out, "--network", tiny_weights_file, "--iterations", "2") == 0

    with Image.open(out) as result:
        assert result.size == (64, 48)


def test_a_clip_to_another_video_format_is_one_clear_error(
    tmp_path: Path,
    clip_and_style: tuple[Path, Path],
    tiny_weights_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clip, style = clip_and_style
    assert run(clip, style, "-o", tmp_path / "out.webm", "--network", tiny_weights_file) == 2
    assert "(.mp4 for a clip)" in capsys.readouterr().err
    assert not (tmp_path / "out.webm").exists()
