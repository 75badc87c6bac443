"""Early stopping: a run ends when its objective stops falling, and its progress still ends at the total."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.images import save_image
from engine.params import StyleParams
from engine.stopping import STOP_TOLERANCE, Plateau, stop_tolerance
from engine.stylize import Progress, iterate, stylize
from engine.vgg import VGG19
from engine.workers import JobSpec, ProgressEvent
from engine.workers.runner import Runner
from tests.engine.conftest import smooth_image

# The tiny network's L-BFGS run on 16 × 16 px: its objective still falls about 2 % per 10 iterations after
# 60 of them, so this tolerance ends it well before a budget of 80; the engine's default would not.
LOOSE = 0.05


def small(**changes: object) -> StyleParams:
    base = StyleParams(
        iterations=80,
        optimizer="lbfgs",
        style_weight=1.0,
        content_weight=1.0,
        learning_rate=2.0,
        seed=0,
        precision="float32",
    )
    return base.with_overrides(**changes)


def run(network: VGG19, params: StyleParams, side: int = 16) -> list[Progress]:
    return list(iterate(network, smooth_image(side, side, 1), [smooth_image(16, 16, 2)], params))


def test_a_plateau_stops_a_flat_objective_and_not_a_falling_one() -> None:
    flat, falling = Plateau(0.01, window=3), Plateau(0.01, window=3)
    for value in (100.0, 50.0, 49.9, 49.8, 49.8, 49.7):
        flat.add(value)
    for value in (100.0, 90.0, 81.0, 72.9, 65.6, 59.0):
        falling.add(value)
    assert flat()
    assert not falling()


def test_a_plateau_waits_for_a_full_window_and_never_stops_at_zero() -> None:
    early, off = Plateau(0.01, window=3), Plateau(0.0, window=3)
    for value in (5.0, 5.0, 5.0):
        early.add(value)
        off.add(value)
    assert not early()  # three values are two iterations apart, not three
    early.add(5.0)
    off.add(5.0)
    assert early()
    assert not off()


def test_a_line_search_trial_above_the_lowest_does_not_count_as_progress() -> None:
    plateau = Plateau(0.01, window=2)
    for value in (10.0, 1000.0, 10.0):  # a rejected trial, then back where it was
        plateau.add(value)
    assert plateau()


def test_l_bfgs_stops_by_default_and_adam_runs_every_iteration() -> None:
    assert stop_tolerance(StyleParams(optimizer="lbfgs")) == STOP_TOLERANCE
    assert stop_tolerance(StyleParams(optimizer="adam")) == 0.0
    assert stop_tolerance(StyleParams(optimizer="adam", stop_tolerance=0.01)) == 0.01
    assert stop_tolerance(StyleParams(optimizer="lbfgs", stop_tolerance=0.0)) == 0.0


@pytest.mark.parametrize("value", [-0.1, 1.0])
def test_a_tolerance_outside_zero_to_one_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match="stop_tolerance"):
        StyleParams(stop_tolerance=value)


def test_a_converged_run_stops_before_its_budget_and_its_bar_ends_at_the_total(network: VGG19) -> None:
    full, stopped = run(network, small(stop_tolerance=0.0)), run(network, small(stop_tolerance=LOOSE))
    ran = stopped[-1].ran
    assert 10 < ran < 80
    # Every iteration that ran is reported, then the end, at the total, with the image.
    assert [s.iteration for s in stopped] == [*range(1, ran + 1), 80]
    assert [s.ran for s in stopped] == [*range(1, ran + 1), ran]
    assert (stopped[-1].iteration, stopped[-1].total) == (80, 80)
    assert stopped[-1].image is not None
    # The same run up to there: the stopped result is the full run's best at that iteration.
    lowest = min(s.losses.total for s in full[:ran])
    assert stopped[-1].losses.total == pytest.approx(lowest, rel=1e-5)
    assert full[-1].losses.total < stopped[-1].losses.total  # the budget would have gone further


def test_zero_runs_every_iteration(network: VGG19) -> None:
    steps = run(network, small(stop_tolerance=0.0))
    assert [s.iteration for s in steps] == list(range(1, 81))
    assert steps[-1].ran == 80
    result = stylize(network, smooth_image(16, 16, 1), [smooth_image(16, 16, 2)], small(stop_tolerance=0.0))
    assert result.iterations == 80


def test_a_run_still_improving_is_not_stopped(network: VGG19) -> None:
    # Adam here halves the objective about every 5 iterations: far faster than any tolerance below 1.
    steps = run(network, small(optimizer="adam", stop_tolerance=0.2, iterations=40))
    assert [s.iteration for s in steps] == list(range(1, 41))
    assert steps[-1].ran == 40


def test_coarse_to_fine_stops_each_scale_on_its_own_and_numbers_on(network: VGG19) -> None:
    # 32 px over a 16 px base: scales of 16, 23 and 32 px with 80, 40 and 20 iterations.
    params = small(max_size=32, multiscale_base=16, stop_tolerance=LOOSE)
    steps = run(network, params, side=32)
    assert steps[-1].total == 140
    assert (steps[-1].iteration, steps[-1].scale, steps[-1].scales) == (140, 3, 3)
    numbers = [s.iteration for s in steps]
    assert numbers == sorted(set(numbers))  # the bar never goes back
    first = {scale: next(s.iteration for s in steps if s.scale == scale) for scale in (1, 2, 3)}
    # A finer scale starts where the plan puts it, whatever the coarser scale left unrun.
    assert first == {1: 1, 2: 81, 3: 121}
    base = [s for s in steps if s.scale == 1]
    assert base[-1].iteration < 80  # the base stopped early
    assert len(steps) - 1 <= steps[-1].ran < 140


@pytest.mark.parametrize("tolerance", [0.0, LOOSE])
def test_a_job_reports_its_end_at_the_total_whether_or_not_it_stopped_early(
    tiny_weights_file: Path, tmp_path: Path, tolerance: float
) -> None:
    save_image(smooth_image(16, 16, 1), tmp_path / "c.png")
    save_image(smooth_image(16, 16, 2), tmp_path / "s.png")
    params = small(stop_tolerance=tolerance)
    spec = JobSpec("9", tmp_path / "c.png", (tmp_path / "s.png",), tmp_path / "out.png", params)
    events: list[ProgressEvent] = []
    outcome = Runner(tiny_weights_file, threads=1).run(spec, events.append, lambda: False)
    assert outcome.status == "done"
    assert (events[-1].iteration, events[-1].total) == (80, 80)
    assert [e.iteration for e in events[:-1]] == list(range(1, len(events)))
    assert (len(events) < 80) == (tolerance > 0)
