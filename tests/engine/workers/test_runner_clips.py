"""A worker's runner on clips: an .mp4 painted frame by frame, a clip's first frame as a picture,
cancellation and damage mid-clip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.clips import first_frame, inspect_clip, read_frames
from engine.images import load_image, save_image
from engine.params import StyleParams
from engine.weights import synthetic_decoder
from engine.workers import Failure, JobSpec, ProgressEvent
from engine.workers.runner import Runner
from tests.clip_factory import write_test_clip, zero_frames
from tests.engine.conftest import smooth_image

FRAMES = 5
PARAMS = StyleParams(iterations=4, frame_iterations=2, max_size=48, seed=0, optimizer="lbfgs")


@pytest.fixture(scope="module")
def runner(tiny_weights_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Runner:
    decoder = tmp_path_factory.mktemp("decoder") / "decoder.npz"
    synthetic_decoder(channels=4).save(decoder)
    return Runner(tiny_weights_file, threads=1, decoder_path=decoder)


def clip_job(tmp_path: Path, output: str, mode: str = "stylize") -> JobSpec:
    clip = write_test_clip(tmp_path / "clip.mp4", frames=FRAMES, size=(64, 48), fps=12)
    save_image(smooth_image(24, 24, 2), tmp_path / "s.png")
    return JobSpec("9", clip, (tmp_path / "s.png",), tmp_path / output, PARAMS, mode=mode)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["stylize", "preview"])
def test_a_clip_is_painted_to_an_mp4_frame_by_frame(runner: Runner, tmp_path: Path, mode: str) -> None:
    spec = clip_job(tmp_path, "out.mp4", mode)
    events: list[ProgressEvent] = []

    outcome = runner.run(spec, events.append, lambda: False)

    assert (outcome.status, outcome.output) == ("done", spec.output)
    info = inspect_clip(spec.output)
    assert (info.width, info.height) == (48, 36)  # the long side at max_size
    assert len(list(read_frames(spec.output, 64))) == FRAMES
    assert [event.frames for event in events] == [FRAMES] * len(events)
    assert sorted({event.frame for event in events}) == list(range(1, FRAMES + 1))
    assert events[-1].iteration == events[-1].total
    iterations = [event.iteration for event in events]
    assert iterations == sorted(iterations)
    if mode == "stylize":
        assert events[-1].total == PARAMS.iterations + (FRAMES - 1) * PARAMS.frame_iterations
        assert outcome.losses is not None
    else:
        assert events[-1].total == FRAMES  # one event per frame


def test_a_fast_clip_takes_its_styles_statistics_once(
    runner: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = runner.adain()
    taken: list[tuple[int, ...]] = []
    real = model.sized_target

    def counted(shape: tuple[int, ...], *args: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        taken.append(shape)
        return real(shape, *args, **kwargs)

    monkeypatch.setattr(model, "sized_target", counted)
    outcome = runner.run(clip_job(tmp_path, "out.mp4", "preview"), lambda event: None, lambda: False)

    assert outcome.status == "done"
    assert taken == [(36, 48, 3)]  # one size, taken once for all the frames


def test_a_picture_output_of_a_clip_is_its_first_frame_painted(runner: Runner, tmp_path: Path) -> None:
    spec = clip_job(tmp_path, "first.png", "preview")
    save_image(first_frame(spec.content, PARAMS.max_size), tmp_path / "frame.png")
    picture = JobSpec(
        "10", tmp_path / "frame.png", spec.styles, tmp_path / "picture.png", PARAMS, mode="preview"
    )

    outcome = runner.run(spec, lambda event: None, lambda: False)
    runner.run(picture, lambda event: None, lambda: False)

    assert outcome.status == "done"
    np.testing.assert_array_equal(load_image(spec.output), load_image(picture.output))


def test_a_clip_cancelled_mid_way_leaves_no_output(runner: Runner, tmp_path: Path) -> None:
    spec = clip_job(tmp_path, "out.mp4")
    events: list[ProgressEvent] = []

    outcome = runner.run(spec, events.append, lambda: any(event.frame >= 3 for event in events))

    assert outcome.status == "cancelled"
    assert max(event.frame for event in events) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "s.png"]


def test_a_clip_damaged_past_its_header_fails_as_a_bad_clip(runner: Runner, tmp_path: Path) -> None:
    spec = clip_job(tmp_path, "out.mp4", "preview")
    zero_frames(spec.content, keep=0.5)

    outcome = runner.run(spec, lambda event: None, lambda: False)

    assert (outcome.status, outcome.failure) == ("failed", Failure.BAD_CLIP)
    assert "clip.mp4" in (outcome.detail or "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "s.png"]
