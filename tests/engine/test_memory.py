"""Memory: the estimate, the largest painting that fits, and a worker shrinking what would not fit."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.images import load_image, save_image
from engine.memory import FIXED, HEADROOM, LEAST_SIDE, PER_PIXEL, estimate, fitting_side, free_memory
from engine.params import StyleParams
from engine.precision import resolve
from engine.workers import runner as runner_module
from engine.workers.jobs import Failure, JobSpec
from engine.workers.runner import Runner
from tests.engine.conftest import smooth_image

GB = 2**30


def test_the_estimate_grows_with_the_pixels_and_bfloat16_needs_less() -> None:
    small, big = estimate(384, 512, "float32"), estimate(1536, 2048, "float32")
    assert FIXED < small < big
    assert big - FIXED == pytest.approx(16 * (small - FIXED))
    assert estimate(1536, 2048, "bfloat16") < 0.8 * big
    # The largest measured peaks (BENCHMARKS.md): 2048 × 1536 coarse to fine in bfloat16, 16-px margin, with
    # the coarser levels' style: 7.71 GiB above the idle worker; 1024 × 768: 2.47 GiB. The estimate covers
    # them, with less than 12 % to spare.
    for (height, width), measured in (((1536, 2048), 7.71 * GB), ((768, 1024), 2.47 * GB)):
        assert measured <= estimate(height + 32, width + 32, "bfloat16") <= 1.12 * measured


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("free_gb", [1.5, 2.0, 5.0, 9.0])
def test_the_fitting_side_is_the_largest_that_fits(dtype: str, free_gb: float) -> None:
    free = int(free_gb * GB)
    side = fitting_side(1536, 2048, 16, dtype, free)

    assert 0 < side <= 2048

    def need(long_side: int) -> int:
        height = round(1536 * long_side / 2048)
        return estimate(height + 32, long_side + 32, dtype)

    if side < 2048:
        # Within a row's rounding of the budget, and 8 px more would not fit.
        assert need(side) <= free * HEADROOM * 1.002 < need(side + 8)
    else:
        assert need(2048) <= free * HEADROOM


def test_enough_memory_keeps_the_size_and_none_refuses() -> None:
    assert fitting_side(1536, 2048, 16, "bfloat16", 64 * GB) == 2048
    assert fitting_side(1536, 2048, 16, "bfloat16", FIXED // 2) == 0
    assert fitting_side(1536, 2048, 16, "float32", int(0.3 * GB)) < LEAST_SIDE


def test_free_memory_is_read_from_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24684100 kB\nMemFree:  1000 kB\nMemAvailable:   20000000 kB\n")
    assert free_memory(meminfo) == 20000000 * 1024
    assert free_memory(tmp_path / "absent") is None


@pytest.fixture
def runner(tiny_weights_file: Path) -> Runner:
    return Runner(tiny_weights_file, threads=1)


def test_a_painting_too_big_for_free_memory_is_painted_as_big_as_fits(
    runner: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_image(smooth_image(300, 400, 1), tmp_path / "c.png")
    save_image(smooth_image(40, 40, 2), tmp_path / "s.png")
    params = StyleParams(iterations=2, max_size=400, margin=8)
    dtype = resolve(params.precision).name
    # Room for about 300 × 225 px (plus the margin), not for 400 × 300.
    free = int((FIXED + PER_PIXEL[dtype] * (225 + 16) * (300 + 16)) / HEADROOM)
    monkeypatch.setattr(runner_module, "free_memory", lambda: free)
    spec = JobSpec("9", tmp_path / "c.png", (tmp_path / "s.png",), tmp_path / "out.png", params)

    outcome = runner.run(spec, lambda event: None, lambda: False)

    assert outcome.status == "done"
    assert outcome.shrunk_to is not None
    assert 290 <= outcome.shrunk_to < 400
    assert load_image(tmp_path / "out.png").shape[1] == outcome.shrunk_to


def test_a_painting_that_fits_nowhere_fails_as_out_of_memory(
    runner: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_image(smooth_image(300, 400, 1), tmp_path / "c.png")
    save_image(smooth_image(40, 40, 2), tmp_path / "s.png")
    monkeypatch.setattr(runner_module, "free_memory", lambda: FIXED)
    spec = JobSpec(
        "10", tmp_path / "c.png", (tmp_path / "s.png",), tmp_path / "out.png", StyleParams(iterations=2)
    )

    outcome = runner.run(spec, lambda event: None, lambda: False)

    assert (outcome.status, outcome.failure) == ("failed", Failure.OUT_OF_MEMORY)
    assert not (tmp_path / "out.png").exists()
