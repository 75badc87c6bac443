"""The up-close measures of bench/upclose.py, which BENCHMARKS.md's style-loss figures rest on."""

from __future__ import annotations

import numpy as np

from bench.upclose import CROP, regularity, windows


def test_windows_cover_the_picture_edge_to_edge() -> None:
    image = np.arange(600 * 300).reshape(300, 600)
    crops = windows(image)
    assert len(crops) == 3 * 2
    assert all(c.shape == (CROP, CROP) for c in crops)
    assert crops[0][0, 0] == image[0, 0]
    assert crops[-1][-1, -1] == image[-1, -1]
    assert windows(np.zeros((100, 700)))[0].shape == (100, CROP)  # a side under CROP is taken whole


def test_a_repeated_cell_is_regular_and_varied_marks_are_not() -> None:
    rng = np.random.default_rng(0)
    cell = rng.uniform(0, 255, (9, 9, 3))
    mosaic = np.tile(cell, (29, 29, 1))[:CROP, :CROP] + rng.normal(0, 10, (CROP, CROP, 3))
    marks = np.zeros((CROP, CROP, 3))
    for _ in range(400):  # strokes of random size, place and shade
        y, x = rng.integers(0, CROP, 2)
        h, w = rng.integers(2, 20, 2)
        marks[y : y + h, x : x + w] = rng.uniform(0, 255)
    assert regularity(mosaic) > 0.5
    assert regularity(marks) < 0.25
    assert regularity(np.full((CROP, CROP, 3), 128.0)) == 0.0  # no detail, nothing repeats
