"""L-BFGS, coarse-to-fine schedules, Adam's steps per call and the compiled functions' reuse."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine.lbfgs_scipy import lbfgs
from engine.multiscale import LEAST_STEP, MIN_FINER, STEP, schedule
from engine.params import StyleParams
from engine.stylize import LBFGS_WARMUP, Cancelled, Progress, iterate, stylize
from engine.vgg import VGG19
from tests.engine.conftest import OPTIMIZER_PATHS, drain, smooth_image

FAST = {"seed": 0, "style_weight": 1.0, "content_weight": 1.0, "learning_rate": 2.0}


def test_lbfgs_stays_within_bounds_and_spends_exactly_its_budget() -> None:
    target = np.array([10.0, -10.0, 1.0], dtype=np.float32)  # outside the box on two channels
    seen: list[np.ndarray] = []

    def loss_and_grad(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seen.append(x.copy())
        diff = (x - target).astype(np.float64)
        total = float(np.sum(diff**2))
        return np.array([total, 0.0, 0.0, total]), 2 * diff

    start = np.zeros((1, 4, 5, 3), dtype=np.float32)
    low, high = np.array([-5.0, -5.0, -5.0]), np.array([5.0, 5.0, 5.0])
    events, best, losses = drain(
        lbfgs(loss_and_grad, start, low, high, evaluations=12, previews=frozenset({3}))
    )

    assert len(seen) <= 12
    assert [e[0] for e in events] == list(range(1, len(seen) + 1))
    assert [e[0] for e in events if e[2] is not None] == ([3] if len(seen) >= 3 else [])
    assert all(x.min() >= -5.0 and x.max() <= 5.0 for x in seen)
    np.testing.assert_allclose(best[..., 0], 5.0, atol=1e-4)
    np.testing.assert_allclose(best[..., 1], -5.0, atol=1e-4)
    np.testing.assert_allclose(best[..., 2], 1.0, atol=1e-3)
    assert losses.total == pytest.approx(2 * 20 * 25.0, rel=1e-4)


def test_lbfgs_keeps_going_while_a_tiny_gradient_still_lowers_the_loss() -> None:
    # Like the style loss per pixel: gradients far below scipy's default tolerance, yet far from done.
    scale = np.logspace(0, 4, 60).reshape(1, 4, 5, 3) * 1e-9
    seen: list[float] = []

    def loss_and_grad(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        diff = (x - 3.0).astype(np.float64)
        total = float(np.sum(scale * diff**2))
        seen.append(total)
        return np.array([total, 0.0, 0.0, total]), 2 * scale * diff

    start = np.zeros((1, 4, 5, 3), dtype=np.float32)
    gen = lbfgs(loss_and_grad, start, np.full(3, -5.0), np.full(3, 5.0), evaluations=30)
    for _ in gen:
        pass

    assert len(seen) == 30
    assert min(seen) < 1e-2 * seen[0]


@pytest.mark.parametrize("multiscale", [False, True])
def test_lbfgs_loss_falls_faster_than_adam(network: VGG19, multiscale: bool) -> None:
    content, style = smooth_image(24, 32, 1), smooth_image(20, 20, 2)
    params = StyleParams(
        iterations=30,
        optimizer="lbfgs",
        multiscale=multiscale,
        multiscale_base=16,
        **FAST,  # type: ignore[arg-type]
    )
    steps = list(iterate(network, content, [style], params))
    adam = stylize(network, content, [style], params.with_overrides(optimizer="adam"))

    total = sum(n for _, n in schedule(32, 30, base=16)) if multiscale else 30
    assert [s.iteration for s in steps] == list(range(1, total + 1))
    assert {s.total for s in steps} == {total}
    assert steps[-1].losses.total < 0.05 * steps[0].losses.total
    assert steps[-1].losses.total < adam.losses.total
    image = steps[-1].image
    assert image is not None
    assert image.shape == (24, 32, 3)
    assert 0.0 <= image.min() <= image.max() <= 255.0


def test_lbfgs_begins_with_the_seeds_adam_steps_then_takes_over(network: VGG19) -> None:
    content, style = smooth_image(24, 32, 1), smooth_image(20, 20, 2)
    params = StyleParams(iterations=12, optimizer="lbfgs", preview_every=1, **FAST)  # type: ignore[arg-type]
    lbfgs_steps = list(iterate(network, content, [style], params))
    adam_steps = list(iterate(network, content, [style], params.with_overrides(optimizer="adam")))

    warmup = LBFGS_WARMUP
    assert warmup >= 1
    assert [s.iteration for s in lbfgs_steps] == list(range(1, 13))
    # The warm-up is Adam, step for step, previews included.
    for ours, adams in zip(lbfgs_steps[:warmup], adam_steps[:warmup], strict=True):
        assert ours.losses == adams.losses
        assert ours.image is not None
        assert adams.image is not None
        np.testing.assert_array_equal(ours.image, adams.image)
    # Then L-BFGS: it first scores Adam's image (clipped to valid pixels), and its path leaves Adam's.
    assert lbfgs_steps[warmup].losses.total == pytest.approx(adam_steps[warmup].losses.total, rel=1e-2)
    assert lbfgs_steps[warmup].losses.total < lbfgs_steps[warmup - 1].losses.total
    assert lbfgs_steps[-1].losses != adam_steps[-1].losses
    assert min(s.losses.total for s in lbfgs_steps) < 0.1 * lbfgs_steps[0].losses.total


@pytest.mark.parametrize("side", [16, 100, 512, 600, 614, 700, 768, 1024, 1500, 2048, 4096])
@pytest.mark.parametrize("iterations", [1, 5, 10, 100, 300])
def test_schedule_paints_at_the_base_then_refines_in_steps_of_root_two(side: int, iterations: int) -> None:
    plan = schedule(side, iterations, base=512)

    sides = [s for s, _ in plan]
    counts = [n for _, n in plan]
    assert sides[-1] == side
    assert counts[0] == iterations  # the base paints as a single-scale run of that size would
    assert all(1 <= n <= iterations for n in counts)
    assert counts == sorted(counts, reverse=True)  # finer scales refine: fewer, dearer iterations
    if side <= 512 * LEAST_STEP:
        assert plan == [(side, iterations)]
    else:
        assert sides[0] == 512
        steps = [b / a for a, b in itertools.pairwise(sides)]
        assert all(LEAST_STEP <= r <= STEP * LEAST_STEP + 0.01 for r in steps)
        assert all(abs(r - STEP) < 0.01 for r in steps[:-1])  # √2 apart, but for the last step


def test_schedule_of_a_2048_px_painting() -> None:
    assert schedule(2048, 100, base=512) == [(512, 100), (724, 50), (1024, 25), (1448, 12), (2048, 10)]
    assert schedule(1024, 100, base=512) == [(512, 100), (724, 50), (1024, 25)]
    assert schedule(512, 100, base=512) == [(512, 100)]


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_multiscale_counts_one_total_and_ends_at_the_target_size(network: VGG19, optimizer: str) -> None:
    content, style = smooth_image(300, 400, 1), smooth_image(40, 40, 2)
    params = StyleParams(
        iterations=4,
        max_size=256,
        multiscale=True,
        multiscale_base=128,
        optimizer=optimizer,  # type: ignore[arg-type]
        preview_every=2,
        **FAST,  # type: ignore[arg-type]
    )
    steps = list(iterate(network, content, [style], params))

    assert schedule(256, 4, base=128) == [(128, 4), (181, 4), (256, 4)]  # each at least min(4, MIN_FINER)
    assert MIN_FINER > 4
    assert [s.iteration for s in steps] == list(range(1, 13))
    assert {s.total for s in steps} == {12}
    assert [(s.scale, s.scales, s.side) for s in steps] == [
        (k, 3, side) for k, side in ((1, 128), (2, 181), (3, 256)) for _ in range(4)
    ]
    shapes = [(s.iteration, s.image.shape) for s in steps if s.image is not None]
    assert shapes == [
        (2, (96, 128, 3)),
        (4, (96, 128, 3)),
        (6, (136, 181, 3)),
        (8, (136, 181, 3)),
        (10, (192, 256, 3)),
        (12, (192, 256, 3)),
    ]


def test_single_scale_when_multiscale_is_off_or_the_size_is_the_base(network: VGG19) -> None:
    content, style = smooth_image(300, 400, 1), smooth_image(40, 40, 2)
    base = StyleParams(iterations=3, max_size=160, multiscale_base=128, **FAST)  # type: ignore[arg-type]
    for params in (base.with_overrides(multiscale=False), base.with_overrides(max_size=150)):
        steps = list(iterate(network, content, [style], params))
        assert [(s.iteration, s.total, s.scales) for s in steps] == [(1, 3, 1), (2, 3, 1), (3, 3, 1)]


@pytest.mark.parametrize(("optimizer", "multiscale"), OPTIMIZER_PATHS)
def test_cancel_stops_both_optimizers(network: VGG19, optimizer: str, multiscale: bool) -> None:
    content, style = smooth_image(100, 140, 1), smooth_image(16, 16, 2)
    params = StyleParams(
        iterations=100,
        max_size=140,
        optimizer=optimizer,  # type: ignore[arg-type]
        multiscale=multiscale,
        multiscale_base=64,
        seed=0,
    )
    seen: list[int] = []
    with pytest.raises(Cancelled):
        stylize(
            network,
            content,
            [style],
            params,
            progress=lambda p: seen.append(p.iteration),
            should_cancel=lambda: len(seen) >= 3,
        )
    assert seen == [1, 2, 3]


def test_adam_steps_per_call_do_not_change_the_result(network: VGG19) -> None:
    content, style = smooth_image(16, 24, 1), smooth_image(16, 16, 2)
    params = StyleParams(iterations=9, initial="noise", preview_every=4, **FAST)  # type: ignore[arg-type]

    def run(per_call: int) -> list[Progress]:
        return list(iterate(network, content, [style], params, steps_per_call=per_call))

    one, many = run(1), run(3)
    assert [s.losses for s in one] == [s.losses for s in many]
    for a, b in zip(one, many, strict=True):
        assert (a.image is None) == (b.image is None)
        if a.image is not None and b.image is not None:
            np.testing.assert_array_equal(a.image, b.image)


def test_compiled_steps_are_reused_across_jobs_and_sizes(network: VGG19) -> None:
    network.compiled.clear()
    style = smooth_image(16, 16, 2)
    for height, width, weight in [(16, 16, 1.0), (24, 16, 2.0), (16, 32, 3.0), (20, 20, 4.0)]:
        for optimizer in ("adam", "lbfgs"):
            params = StyleParams(iterations=4, style_weight=weight, seed=0, optimizer=optimizer)  # type: ignore[arg-type]
            stylize(network, smooth_image(height, width, 1), [style], params)
    (fn,) = network.compiled.values()
    assert fn.adam_step.experimental_get_tracing_count() == 1  # type: ignore[attr-defined]
    assert fn.parts.experimental_get_tracing_count() == 1  # type: ignore[attr-defined]
    assert fn.loss_and_grad.experimental_get_tracing_count() == 1  # type: ignore[attr-defined]
