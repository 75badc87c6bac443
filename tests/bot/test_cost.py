"""A job's cost for wait estimates: each scale of a painting by its pixels."""

from __future__ import annotations

import pytest

from bot.cost import work
from engine.multiscale import levels, schedule
from storage import JobRequest


def test_work_counts_each_scale_by_its_pixels() -> None:
    request = JobRequest(iterations=100, max_size=2048)
    # 512 px: one scale, 100 iterations of one unit each.
    assert work(request, 512) == pytest.approx(100.0)
    # A small photo is not enlarged: the work is a 600-px single-scale painting's.
    assert work(request, 600) == pytest.approx(100 * (600 / 512) ** 2)
    # 2048 px, coarse to fine: each scale's iterations cost their own area and, above the first scale,
    # their coarser levels' (2048: 1024 and 512), far less than 100 × 16.
    plan = schedule(2048, 100, 512)
    assert [side for side, _ in plan] == [512, 724, 1024, 1448, 2048]
    scales = sum(n * (side / 512) ** 2 for side, n in plan)
    coarser = sum(n * sum((level / 512) ** 2 for level in levels(side, 512)) for side, n in plan[1:])
    assert coarser == pytest.approx(50 * 1 + 25 * 1 + 12 * (2 + 1) + 10 * (4 + 1), rel=0.01)
    assert work(request, 4000) == pytest.approx(scales + coarser)
    assert 500 < scales + coarser < 900
    # A fast job is one feed-forward pass: its pixels, once.
    assert work(JobRequest(iterations=100, max_size=2048, fast=True), 1024) == pytest.approx(4.0)
