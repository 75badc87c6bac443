"""Painting clips: the temporal term, painted mode's steadiness and its steps, fast mode's blending."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import tensorflow as tf

from engine.adain import AdaIN
from engine.animate import FrameStep, fast, paint, painted_total
from engine.compiled import compiled
from engine.descent import Cancelled
from engine.flow import flicker, motion
from engine.objective import Objective
from engine.params import StyleParams
from engine.vgg import VGG19
from engine.weights import VGGWeights, synthetic_decoder
from tests.engine.conftest import smooth_image
from tests.engine.test_flow import square_frames

PARAMS = StyleParams(
    iterations=30, frame_iterations=10, max_size=64, optimizer="lbfgs", seed=0, stop_tolerance=0.0
)
STYLE = smooth_image(32, 32, 2)


def paintings(steps: list[FrameStep]) -> list[np.ndarray]:
    return [step.image for step in steps if step.image is not None]


def test_the_temporal_term_adds_its_weighted_masked_mean_square_to_the_total(network: VGG19) -> None:
    content = smooth_image(24, 32, 5)
    previous = smooth_image(24, 32, 6)
    mask = np.zeros((24, 32), np.float32)
    mask[:, :16] = 1.0  # only the left half is reliable
    # The synthetic network's style loss is ~1e10 at the usual weight: one this small keeps the total's
    # float32 steps finer than the term.
    params = PARAMS.with_overrides(temporal_weight=0.3, style_weight=1.0)
    plain = Objective(network, content, [STYLE], params)
    steady = Objective(network, content, [STYLE], params, grams=plain.targets[1], temporal=(previous, mask))
    image = tf.constant(network.preprocess(smooth_image(24, 32, 7)))

    without = compiled(plain).parts(image, plain.targets, plain.coefficients).numpy()
    with_term = compiled(steady).parts(image, steady.targets, steady.coefficients).numpy()

    difference = (network.unprocess(image.numpy()) - previous)[:, :16]
    expected = 0.3 * np.sum(np.square(difference)) / (24 * 32 * 3)
    np.testing.assert_allclose(with_term[:3], without[:3], rtol=1e-5)  # content, style, tv as a picture's
    assert with_term[3] - without[3] == pytest.approx(expected, rel=1e-3)
    assert plain.targets[3] == ()
    assert not plain.structure.temporal


def test_painted_frames_flicker_far_less_than_frames_painted_one_by_one(network: VGG19) -> None:
    frames = square_frames((8, 12, 16, 20))
    moves = [motion(a, b) for a, b in itertools.pairwise(frames)]

    steady = paintings(list(paint(network, frames, 4, [STYLE], PARAMS)))
    alone = [paintings(list(paint(network, [frame], 1, [STYLE], PARAMS)))[0] for frame in frames]

    assert len(steady) == 4
    assert steady[0].shape == frames[0].shape
    np.testing.assert_array_equal(steady[0], alone[0])  # the first frame is painted as a picture
    assert flicker(steady, moves) < flicker(alone, moves) / 2


def test_a_painted_clip_counts_every_frames_iterations_and_reuses_one_trace(network: VGG19) -> None:
    frames = square_frames((8, 11, 14, 17))
    steps = list(paint(network, frames, 4, [STYLE], PARAMS))

    total = painted_total(64, 4, PARAMS)
    assert total == 30 + 3 * 10
    assert [step.iteration for step in steps] == list(range(1, total + 1))
    assert {step.total for step in steps} == {total}
    assert [step.frame for step in steps if step.image is not None] == [1, 2, 3, 4]
    assert steps[-1].image is not None
    assert steps[-1].iteration == total
    assert all(step.frames == 4 for step in steps)
    temporal = [fn for key, fn in network.compiled.items() if key[0].temporal]  # type: ignore[index]
    assert len(temporal) == 1  # one structure for every later frame …
    assert temporal[0].loss_and_grad.experimental_get_tracing_count() == 1  # … traced once


def test_a_clip_with_fewer_frames_than_counted_still_ends_at_its_total(network: VGG19) -> None:
    frames = square_frames((8, 12))
    steps = list(paint(network, frames, 3, [STYLE], PARAMS))
    assert steps[-1].iteration == steps[-1].total == painted_total(64, 3, PARAMS)
    assert len(paintings(steps)) == 2


def test_painting_a_clip_stops_when_cancelled_in_a_later_frame(network: VGG19) -> None:
    frames = square_frames((8, 12, 16))
    seen: list[FrameStep] = []

    def cancel() -> bool:
        return any(step.frame == 2 for step in seen)

    steps = paint(network, frames, 3, [STYLE], PARAMS, cancel)
    with pytest.raises(Cancelled):
        seen.extend(steps)
    assert max(step.frame for step in seen) == 2
    assert len(paintings(seen)) == 1


@pytest.fixture(scope="module")
def adain(tiny_weights: VGGWeights) -> AdaIN:
    return AdaIN(tiny_weights, synthetic_decoder(channels=4))


def test_fast_frames_blended_along_the_flow_flicker_less_than_alone(adain: AdaIN) -> None:
    frames = square_frames((8, 12, 16, 20))
    moves = [motion(a, b) for a, b in itertools.pairwise(frames)]
    noise = iter(np.random.default_rng(0).normal(0.0, 20.0, (4, 48, 64, 3)).astype(np.float32))

    def stylise(frame: np.ndarray) -> np.ndarray:
        # The synthetic decoder paints smoothly; noise per call stands in for a real network's flicker.
        return np.clip(adain.preview(frame, [STYLE]) + next(noise), 0.0, 255.0)

    alone = paintings(list(fast(frames, 4, stylise, 64, blend=0.0)))
    noise = iter(np.random.default_rng(0).normal(0.0, 20.0, (4, 48, 64, 3)).astype(np.float32))
    steps = list(fast(frames, 4, stylise, 64))
    blended = paintings(steps)

    assert [(s.frame, s.iteration, s.total) for s in steps] == [(k, k, 4) for k in range(1, 5)]
    np.testing.assert_array_equal(blended[0], alone[0])
    assert flicker(blended, moves) < 0.7 * flicker(alone, moves)
