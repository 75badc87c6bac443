"""The cost model and the size a time budget allows."""

from __future__ import annotations

import pytest

from engine.budget import SIZES, clip_work, estimates, largest_within, work


def test_each_size_is_estimated_from_its_coarse_to_fine_work() -> None:
    times = estimates(pace=2.0, iterations=100, max_size=1024)
    assert list(times) == [512, 768, 1024]  # capped by the largest size allowed
    assert times[512] == pytest.approx(100 * 2.0)  # 100 iterations of one unit
    assert times[1024] == pytest.approx(work(1024, 100) * 2.0)
    assert times[512] < times[768] < times[1024]


def test_the_largest_size_within_the_target_and_never_below_the_smallest() -> None:
    pace, iterations = 1.0, 100
    times = estimates(pace, iterations, 2048)
    assert largest_within(pace, iterations, times[1024], 2048) == 1024
    assert largest_within(pace, iterations, times[1024] - 1, 2048) == 768
    assert largest_within(pace, iterations, 1e9, 2048) == 2048
    assert largest_within(pace, iterations, 1e9, 1500) == 1448  # never above MAX_IMAGE_SIZE
    assert largest_within(pace, iterations, 1.0, 2048) == SIZES[0] == 512  # none fits: the smallest


@pytest.mark.parametrize("fast", [False, True])
def test_a_clip_costs_more_with_more_frames_and_more_pixels(fast: bool) -> None:
    def cost(side: int, frames: int) -> float:
        return clip_work(side, frames, iterations=100, frame_iterations=20, fast=fast)

    assert cost(256, 1) < cost(256, 2) < cost(256, 36) < cost(480, 36) < cost(512, 36)


def test_a_painted_clip_is_its_first_picture_and_the_later_frames_iterations() -> None:
    assert clip_work(512, 1, 100, 20, fast=False) == pytest.approx(work(512, 100))
    assert clip_work(256, 5, 100, 20, fast=False) == pytest.approx(work(256, 100) + 4 * 20 / 4)
    assert clip_work(512, 1, 100, 20, fast=True) == pytest.approx(1.0)  # one fast picture's pixels
