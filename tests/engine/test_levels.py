"""Coarse to fine: the style matched on the image shrunk to the coarser scales (multiscale_levels)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from engine.cli import stylize_parser
from engine.compiled import compiled
from engine.multiscale import LEAST_STEP, levels
from engine.objective import LEVEL_FILTER, Objective
from engine.params import StyleParams
from engine.stylize import coarser_levels, iterate, prepare
from engine.vgg import VGG19
from tests.engine.conftest import smooth_image

FAST = {"seed": 0, "style_weight": 1.0, "content_weight": 1.0, "learning_rate": 2.0, "precision": "float32"}


@pytest.mark.parametrize(
    ("side", "expected"),
    [
        (512, []),
        (300, []),
        (600, [512]),
        (724, [512]),
        (1024, [512]),
        (1448, [724, 512]),
        (2048, [1024, 512]),
    ],
)
def test_levels_are_the_octaves_above_the_base_then_the_base(side: int, expected: list[int]) -> None:
    assert levels(side, 512) == expected
    assert all(level > 512 * LEAST_STEP for level in expected[:-1])
    assert levels(4096, 512) == [2048, 1024, 512]


def test_coarser_levels_shrink_the_canvas_and_size_the_style_as_the_base_scale_would() -> None:
    content, style = smooth_image(96, 128, 1), smooth_image(40, 60, 2)
    params = StyleParams(multiscale_base=32)
    canvas = (104, 136, 3)  # the 96×128 scale with a 4 px margin

    found = coarser_levels(content, [style], params, 128, canvas)

    assert [shape for shape, _ in found] == [(52, 68), (26, 34)]  # levels 64 and 32 px
    for (_, (sized,)), side in zip(found, (64, 32), strict=True):
        assert sized.shape == prepare(content, [style], params.with_overrides(max_size=side))[1][0].shape
        assert sized.shape[1] == side  # the style as wide as that painting, as the base scale sizes it
    assert coarser_levels(content, [style], params.with_overrides(multiscale_levels=0.0), 128, canvas) == []
    assert coarser_levels(content, [style], params, 32, (40, 40, 3)) == []


def objectives(network: VGG19, weight: float) -> tuple[Objective, Objective, Objective, tf.Tensor, tf.Tensor]:
    """A 48×64 canvas's objective with one level (24×32), the same without, and the level's own style
    term scored alone; the start image and the image shrunk to the level."""
    params = StyleParams(multiscale_levels=weight, **FAST)  # type: ignore[arg-type]
    canvas, style, small_style = smooth_image(48, 64, 1), smooth_image(48, 48, 2), smooth_image(24, 24, 3)
    plain = Objective(network, canvas, [style], params)
    with_level = Objective(network, canvas, [style], params, [((24, 32), [small_style])])
    level_alone = Objective(network, smooth_image(24, 32, 4), [small_style], params)
    image = tf.constant(network.preprocess(smooth_image(48, 64, 5)))
    small = tf.image.resize(image, (24, 32), method=LEVEL_FILTER, antialias=True)
    return plain, with_level, level_alone, image, small


def loss_and_grad(objective: Objective, image: tf.Tensor) -> tuple[np.ndarray, np.ndarray]:
    with tf.GradientTape() as tape:
        tape.watch(image)
        parts = objective(image)
        total = parts[0] + parts[1] + parts[2]
    return np.array([float(x) for x in parts]), tape.gradient(total, image).numpy()


def test_a_level_adds_its_weighted_style_term_to_the_style_loss_and_gradient(network: VGG19) -> None:
    plain, with_level, level_alone, image, small = objectives(network, 0.5)

    base, base_grad = loss_and_grad(plain, image)
    ours, grad = loss_and_grad(with_level, image)

    assert with_level.structure.levels == 1
    assert ours[0] == base[0]  # content and TV untouched
    assert ours[2] == base[2]
    np.testing.assert_allclose(ours[1], base[1] + 0.5 * float(level_alone(small)[1]), rtol=1e-5)
    assert ours[1] > base[1] * 1.01
    assert np.abs(grad - base_grad).max() > 1e-3 * np.abs(base_grad).max()


def test_a_level_sees_the_picture_shrunk_as_pillow_shrinks_it_bicubic(network: VGG19) -> None:
    """The level's style term is that of the picture shrunk as Pillow shrinks by default (bicubic,
    antialiased). A softer shrink would let fine grain pass unseen; on this picture it scores apart."""
    plain, with_level, level_alone, image, _ = objectives(network, 1.0)
    pixels = network.unprocess(image.numpy())

    def level_term(shrunk: np.ndarray) -> float:
        return float(level_alone(tf.constant(network.preprocess(shrunk)))[1])

    pillow = [
        Image.fromarray(np.ascontiguousarray(pixels[..., c])).resize((32, 24), Image.BICUBIC)
        for c in range(3)
    ]
    expected = level_term(np.stack([np.asarray(c, np.float32) for c in pillow], axis=-1))
    blurred = level_term(tf.image.resize(pixels[None], (24, 32), "bilinear", antialias=True)[0].numpy())
    found = float(with_level(image)[1] - plain(image)[1])

    assert found == pytest.approx(expected, rel=1e-4)  # Lanczos would be 1 % off
    assert abs(blurred - expected) > 0.05 * expected  # about 10 % here


def test_weight_zero_is_exactly_the_plain_objective(network: VGG19) -> None:
    plain, with_level, _, image, _ = objectives(network, 0.0)

    base, base_grad = loss_and_grad(plain, image)
    ours, grad = loss_and_grad(with_level, image)

    assert with_level.structure == plain.structure
    np.testing.assert_array_equal(ours, base)
    np.testing.assert_array_equal(grad, base_grad)


def test_compiled_functions_count_the_levels_and_do_not_retrace_for_other_sizes(network: VGG19) -> None:
    params = StyleParams(**FAST)  # type: ignore[arg-type]
    style = smooth_image(30, 30, 2)
    fn = None
    for height, width in ((48, 64), (40, 56)):
        canvas = smooth_image(height, width, 1)
        level = ((height // 2, width // 2), [smooth_image(15, 15, 3)])
        objective = Objective(network, canvas, [style], params, [level])
        fn = compiled(objective)
        image = tf.constant(network.preprocess(smooth_image(height, width, 5)))
        values, grad = fn.loss_and_grad(image, objective.targets, objective.coefficients)
        expected, expected_grad = loss_and_grad(objective, image)
        np.testing.assert_allclose(values.numpy()[:3], expected, rtol=1e-3)
        np.testing.assert_allclose(
            grad.numpy(), expected_grad, rtol=1e-3, atol=1e-6 * np.abs(expected_grad).max()
        )
    assert fn is not None
    assert fn.loss_and_grad.experimental_get_tracing_count() == 1


def run_iterate(network: VGG19, optimizer: str, weight: float, max_size: int) -> list[tuple[int, float]]:
    params = StyleParams(
        iterations=6,
        max_size=max_size,
        multiscale_base=32,
        optimizer=optimizer,  # type: ignore[arg-type]
        margin=2,
        multiscale_levels=weight,
        **FAST,  # type: ignore[arg-type]
    )
    events = list(iterate(network, smooth_image(48, 64, 1), [smooth_image(40, 40, 2)], params))
    assert events[-1].image is not None
    assert events[-1].image.shape == (max_size * 3 // 4, max_size, 3)
    assert np.isfinite(events[-1].image).all()
    return [(e.side, e.losses.style) for e in events]


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_both_optimizers_match_the_levels_only_above_the_base(network: VGG19, optimizer: str) -> None:
    on, off = run_iterate(network, optimizer, 1.0, 48), run_iterate(network, optimizer, 0.0, 48)

    assert {side for side, _ in on} == {32, 48}
    base_on, base_off = [x for x in on if x[0] == 32], [x for x in off if x[0] == 32]
    assert base_on == base_off  # the base scale has no coarser level
    finer_on, finer_off = [x for x in on if x[0] > 32], [x for x in off if x[0] > 32]
    assert all(a[1] > b[1] for a, b in zip(finer_on[:1], finer_off[:1], strict=True))  # the levels count
    assert finer_on != finer_off


def test_a_job_at_or_below_the_base_is_unchanged(network: VGG19) -> None:
    assert run_iterate(network, "lbfgs", 1.0, 32) == run_iterate(network, "lbfgs", 0.0, 32)


def test_the_command_line_sets_the_levels_weight() -> None:
    parser = stylize_parser()
    common = ["content.jpg", "style.jpg", "-o", "out.png"]

    assert parser.parse_args(common).multiscale_levels == StyleParams().multiscale_levels == 1.0
    assert parser.parse_args([*common, "--multiscale-levels", "0"]).multiscale_levels == 0.0
    assert parser.parse_args([*common, "--multiscale-levels", "2.5"]).multiscale_levels == 2.5
    with pytest.raises(ValueError, match="multiscale_levels must not be negative"):
        StyleParams(multiscale_levels=-0.5)
