"""Optical flow, warping by it, the reliability mask and the flicker measure on textured synthetic frames."""

from __future__ import annotations

import itertools

import numpy as np

from engine.flow import flicker, flow, motion, warp
from tests.engine.conftest import smooth_image


def shifted_pair(dx: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
    """Two 64×80 views of one textured picture, the second with its content moved by (dx, dy) pixels."""
    picture = smooth_image(96, 112, 4)
    before = picture[16:80, 16:96]
    after = picture[16 - dy : 80 - dy, 16 - dx : 96 - dx]
    return before, after


def test_flow_recovers_a_known_shift() -> None:
    before, after = shifted_pair(3, -2)
    found = flow(before, after)
    assert found.shape == (64, 80, 2)
    inner = found[8:-8, 8:-8]
    assert abs(np.median(inner[..., 0]) - 3.0) < 0.25
    assert abs(np.median(inner[..., 1]) + 2.0) < 0.25


def test_warping_by_the_backward_flow_gives_the_next_frame() -> None:
    before, after = shifted_pair(4, 3)
    carried = warp(before, flow(after, before))
    inner = (slice(8, -8), slice(8, -8))
    assert np.abs(carried - after)[inner].mean() < 1.0  # pixel units, 0..255
    assert np.abs(before - after)[inner].mean() > 20.0  # the frames themselves differ a lot


def test_warping_keeps_a_single_channel_image_its_shape() -> None:
    mask = np.ones((10, 12, 1), np.float32)
    assert warp(mask, np.zeros((10, 12, 2), np.float32)).shape == (10, 12, 1)


def square_frames(left: tuple[int, ...]) -> list[np.ndarray]:
    """A flat red square (16 px) over a textured background, its left edge at each of `left`."""
    background = smooth_image(48, 64, 1)
    frames = []
    for x in left:
        frame = background.copy()
        frame[16:32, x : x + 16] = (250.0, 40.0, 40.0)
        frames.append(frame)
    return frames


def test_the_mask_marks_the_background_a_moving_square_uncovers() -> None:
    before, after = square_frames((12, 22))
    mask = motion(before, after).mask
    assert mask.shape == (48, 64)
    uncovered = mask[18:30, 13:21]  # under the square in `before`, background in `after`
    far = np.concatenate([mask[:8].ravel(), mask[40:].ravel()])
    assert uncovered.mean() < 0.5
    assert far.mean() > 0.9


def test_flicker_is_zero_for_a_still_clip_and_counts_a_change_between_frames() -> None:
    frames = square_frames((12, 12, 12))
    moves = [motion(a, b) for a, b in itertools.pairwise(frames)]
    assert flicker(frames, moves) < 0.5
    changed = [frames[0], frames[1] + 10.0, frames[2]]
    assert 9.0 < flicker(changed, moves) < 11.0  # every pixel 10 brighter, then 10 darker
