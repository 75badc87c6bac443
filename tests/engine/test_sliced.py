"""The sliced Wasserstein style loss (engine.sliced) and the average of the iterates (engine.descent)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from engine.compiled import compiled
from engine.descent import adam
from engine.objective import Objective, sliced_style_loss, style_loss
from engine.params import STYLE_LAYERS, StyleParams
from engine.sliced import draw_directions, resample, sliced_distance, sorted_projections
from engine.stylize import initial_image, iterate
from engine.vgg import VGG19, gram
from tests.engine.conftest import drain, smooth_image


def features(values: np.ndarray) -> tf.Tensor:
    """(N, C) → (1, 1, N, C) float32, a layer's features with N positions."""
    return tf.constant(values[np.newaxis, np.newaxis].astype(np.float32))


def distance(ours: np.ndarray, style: np.ndarray, seed: int = 0) -> float:
    directions = draw_directions(style.shape[1], np.random.default_rng(seed))
    target = sorted_projections(features(style), directions)
    return float(sliced_distance(features(ours), tf.constant(directions), target))


def whitened(values: np.ndarray) -> np.ndarray:
    """(N, C) rescaled so that its Gram matrix XᵀX / N is exactly the identity."""
    covariance = values.T @ values / len(values)
    eigenvalues, vectors = np.linalg.eigh(covariance)
    return values @ vectors @ np.diag(eigenvalues**-0.5) @ vectors.T


def test_zero_for_the_style_itself_and_positive_for_another_image(network: VGG19) -> None:
    style, other = smooth_image(24, 24, 1), smooth_image(24, 24, 2)
    params = StyleParams(style_loss="sliced", gram_layers=0, content_weight=0.0, tv_weight=0.0, seed=0)
    objective = Objective(network, style, [style], params)
    _, on_itself, _ = objective(tf.constant(network.preprocess(style)))
    _, on_other, _ = objective(tf.constant(network.preprocess(other)))
    assert float(on_other) > 0.0
    assert float(on_itself) < 1e-6 * float(on_other)  # zero but for float32 round-off in the matmul


def test_invariant_to_permuting_positions() -> None:
    rng = np.random.default_rng(0)
    ours, style = rng.gamma(2.0, size=(300, 8)), rng.normal(size=(300, 8))
    assert distance(ours[rng.permutation(300)], style) == pytest.approx(distance(ours, style), rel=1e-6)
    assert distance(ours, style[rng.permutation(300)]) == pytest.approx(distance(ours, style), rel=1e-6)


def test_tells_apart_features_with_the_same_gram_but_another_distribution() -> None:
    # The Gram loss's blind spot: a style of sparse, high-contrast features (few positions far from
    # zero) and a painting of Gaussian features with exactly the same Gram matrix.
    rng = np.random.default_rng(0)
    style = whitened(rng.normal(size=(2000, 8)) * (rng.uniform(size=(2000, 1)) < 0.1))
    same_kind = whitened(rng.normal(size=(2000, 8)) * (rng.uniform(size=(2000, 1)) < 0.1))
    gaussian = whitened(rng.normal(size=(2000, 8)))
    gram_gap = float(tf.reduce_max(tf.abs(gram(features(gaussian)) - gram(features(style)))))
    assert gram_gap < 1e-6
    assert distance(gaussian, style) > 5 * distance(same_kind, style)


def test_resampling_reads_the_quantiles_at_another_count() -> None:
    ramp = np.stack([np.arange(10.0), 3.0 * np.arange(10.0)], axis=1).astype(np.float32)  # (10, 2), sorted
    np.testing.assert_array_equal(resample(tf.constant(ramp), tf.constant(10)).numpy(), ramp)
    for count in (4, 25):
        at = (np.arange(count) + 0.5) * 10 / count - 0.5
        expected = np.stack([np.interp(at, np.arange(10), ramp[:, k]) for k in range(2)], axis=1)
        np.testing.assert_allclose(
            resample(tf.constant(ramp), tf.constant(count)).numpy(), expected, rtol=1e-6
        )
    # A painting with fewer positions than the style, from the same distribution, is near it; one from
    # another distribution is not.
    rng = np.random.default_rng(1)
    style = rng.normal(size=(5000, 4))
    assert distance(rng.normal(size=(700, 4)), style) < 0.1 * distance(rng.gamma(1.0, size=(700, 4)), style)


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_optimisation_lowers_the_sliced_objective(network: VGG19, optimizer: str) -> None:
    content, style = smooth_image(24, 32, 1), smooth_image(24, 24, 2)
    params = StyleParams(
        iterations=20,
        style_loss="sliced",
        gram_layers=0,
        optimizer=optimizer,  # type: ignore[arg-type]
        seed=0,
        style_weight=1e4,  # the sliced term is ~1e-4 of its raw distance (engine.sliced.SCALE)
        content_weight=1.0,
        learning_rate=2.0,
    )
    steps = list(iterate(network, content, [style], params))
    first, last = steps[0].losses, steps[-1].losses
    assert last.total < 0.7 * first.total
    assert last.style < first.style


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_both_precisions_give_a_finite_falling_sliced_objective(network: VGG19, precision: str) -> None:
    content, style = smooth_image(24, 24, 1), smooth_image(24, 24, 2)
    params = StyleParams(
        iterations=8,
        style_loss="sliced",
        gram_layers=0,
        optimizer="lbfgs",
        precision=precision,  # type: ignore[arg-type]
        seed=0,
    )
    steps = list(iterate(network, content, [style], params))
    assert all(np.isfinite(s.losses.total) for s in steps)
    assert steps[-1].losses.total < steps[0].losses.total


def test_averaging_returns_the_moving_average_of_the_iterates(network: VGG19) -> None:
    content, style = smooth_image(16, 16, 1), smooth_image(16, 16, 2)
    plain = StyleParams(iterations=6, seed=0, style_weight=1.0, content_weight=1.0, learning_rate=2.0)
    objective = Objective(network, content, [style], plain)
    fn = compiled(objective)
    start = initial_image(network, content, plain)
    every = frozenset(range(1, 7))
    events, _, _ = drain(adam(fn, objective, start, 6, plain, every, lambda: False, None, lambda: False))
    iterates = [start] + [image for _, _, image in events]

    decay = 0.6
    by_hand = np.zeros_like(start, dtype=np.float64)
    weight = 0.0
    for image in iterates:
        by_hand = decay * by_hand + (1 - decay) * image
        weight = decay * weight + (1 - decay)
    averaging = plain.with_overrides(average_decay=decay)
    _, image, losses = drain(
        adam(fn, objective, start, 6, averaging, frozenset(), lambda: False, None, lambda: False)
    )
    np.testing.assert_allclose(image, by_hand / weight, rtol=1e-6, atol=1e-4)
    assert losses.total == pytest.approx(
        float(fn.parts(tf.constant(image), objective.targets, objective.coefficients)[3])
    )
    assert np.abs(image - iterates[-1]).max() > 1.0  # not the last iterate


def test_bad_style_loss_and_decay_are_refused() -> None:
    with pytest.raises(ValueError, match="style_loss"):
        StyleParams(style_loss="wasserstein")  # type: ignore[arg-type]
    for decay in (-0.1, 1.0):
        with pytest.raises(ValueError, match="average_decay"):
            StyleParams(average_decay=decay)
    assert StyleParams.from_dict(
        StyleParams(style_loss="sliced", average_decay=0.99).to_dict()
    ) == StyleParams(style_loss="sliced", average_decay=0.99)


def test_no_averaging_returns_the_lowest_loss_image(network: VGG19) -> None:
    content, style = smooth_image(16, 24, 1), smooth_image(16, 16, 2)
    params = StyleParams(iterations=10, optimizer="lbfgs", seed=0, average_decay=0.0)
    steps = list(iterate(network, content, [style], params))
    assert steps[-1].losses.total <= min(s.losses.total for s in steps[:-1])
    averaged = list(iterate(network, content, [style], params.with_overrides(average_decay=0.9)))
    assert averaged[-1].losses.total > min(s.losses.total for s in averaged[:-1])


def test_gram_layers_match_the_shallowest_layers_by_gram_and_the_rest_sliced(network: VGG19) -> None:
    content, style = smooth_image(24, 24, 1), smooth_image(24, 24, 2)
    image = tf.constant(network.preprocess(content))

    def objective(**chosen: object) -> Objective:
        params = StyleParams(content_weight=0.0, tv_weight=0.0, seed=0, **chosen)  # type: ignore[arg-type]
        return Objective(network, content, [style], params)

    grams, mixed = objective(style_loss="gram"), objective(style_loss="sliced", gram_layers=2)
    every = objective(style_loss="sliced", gram_layers=len(STYLE_LAYERS))
    assert float(every(image)[1]) == pytest.approx(float(grams(image)[1]), rel=1e-6)  # all by Gram: the same

    [gram_targets], [mixed_targets] = grams.targets[1], mixed.targets[1]
    for ours, theirs in zip(mixed_targets[:2], gram_targets[:2], strict=True):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    assert all(isinstance(target, tuple) for target in mixed_targets[2:])  # directions, sorted projections
    found = network.features(image, STYLE_LAYERS)
    feats = [found[layer] for layer in STYLE_LAYERS]
    coefficients = mixed.coefficients[1]
    expected = style_loss(feats[:2], (mixed_targets[:2],), coefficients[:, :2]) + sliced_style_loss(
        feats[2:], (mixed_targets[2:],), coefficients[:, 2:]
    )
    assert float(mixed(image)[1]) == pytest.approx(float(expected), rel=1e-5)
    with pytest.raises(ValueError, match="gram_layers"):
        StyleParams(gram_layers=6)
