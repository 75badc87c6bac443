"""The objective of anishathalye/neural-style: content + style + total-variation loss of an image on VGG-19
features.

Term for term as anishathalye/neural-style's stylize.py, so loss values compare number for number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from engine.params import STYLE_LAYERS, StyleParams
from engine.precision import resolve
from engine.sliced import SCALE, draw_directions, sliced_distance, sorted_projections
from engine.vgg import VGG19, gram

# How the image is shrunk to a coarser level inside the gradient (tf.image.resize, antialiased): bicubic,
# the same shrink as Pillow's default. The optimisation fits the picture's look shrunk by exactly this
# filter, so it must not be one that hides grain a viewer's shrink would show: bicubic keeps the painting
# closest to the style under the common shrinks (the comparison: BENCHMARKS.md).
LEVEL_FILTER = "bicubic"


def layer_weights(
    params: StyleParams, n_styles: int
) -> tuple[dict[str, float], dict[str, float], list[float]]:
    """Content layer weights, normalised style layer weights and normalised style blend weights.

    Layers whose weight is zero are left out, so the network stops at the deepest layer that matters.
    """
    content = {"relu4_2": params.content_weight_blend, "relu5_2": 1.0 - params.content_weight_blend}
    style_raw = {layer: params.style_layer_weight_exp**i for i, layer in enumerate(STYLE_LAYERS)}
    total = sum(style_raw.values())
    style = {layer: w / total for layer, w in style_raw.items()}
    blend = list(params.style_blend_weights or (1.0,) * n_styles)
    if len(blend) != n_styles:
        raise ValueError(f"{len(blend)} style blend weights for {n_styles} style images")
    blend_sum = sum(blend)
    return (
        {k: v for k, v in content.items() if v > 0},
        {k: v for k, v in style.items() if v > 0},
        [w / blend_sum for w in blend],
    )


@dataclass(frozen=True)
class Structure:
    """What a compiled function depends on besides tensor shapes: layers read, pooling and number format."""

    pooling: str
    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    styles: int
    dtype: str = "float32"  # of the convolutions ("float32" or "bfloat16"); Grams and losses are float32
    levels: int = 0  # coarser levels whose style is matched too (coarse to fine, see engine.multiscale)
    temporal: bool = False  # a clip frame's temporal term (see `temporal_loss`)
    style_loss: str = "gram"  # StyleParams.style_loss: what the style targets are (see `Grams`)
    gram_layers: int = 0  # StyleParams.gram_layers: with the sliced loss, the first style layers by Gram

    def sliced(self, j: int) -> bool:
        """Whether style layer j (0: the shallowest) is matched by the sliced loss, else by its Gram."""
        return self.style_loss == "sliced" and j >= self.gram_layers


# Per style image, one target per style layer: its (c, c) Gram, or with the sliced loss the pair of that
# layer's (c, c) projection directions and the style's (m, c) sorted projections on them (engine.sliced),
# so whoever shares the targets (a clip's frames) shares the directions they were taken on.
Grams = tuple[tuple[tf.Tensor | tuple[tf.Tensor, tf.Tensor], ...], ...]
# A coarser level: the (2,) int32 canvas size the image is shrunk to, and the style's Grams at that size.
Level = tuple[tf.Tensor, Grams]
# A clip frame's temporal target: () for a picture, else the previous painted frame warped to this one,
# preprocessed (1, H, W, 3), and each pixel's weight (1, H, W, 1): the temporal weight where the flow is
# reliable, 0 where it is not.
Temporal = tuple[tf.Tensor, ...]
# Content targets (one (1, h, w, c) per content layer), the style's Grams, the coarser levels', and the
# temporal target.
Targets = tuple[tuple[tf.Tensor, ...], Grams, tuple[Level, ...], Temporal]
# Each term's weight: (content layers,), (styles, style layers), the TV weight and the coarser levels'
# weight (× the style's), all float32.
Coefficients = tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]
# A coarser level as the caller gives it: the (height, width) to shrink the canvas to, and the style images
# sized for a painting of that size.
LevelInput = tuple[tuple[int, int], Sequence[np.ndarray]]


class Objective:
    """content + style + TV loss of a preprocessed (1, H, W, 3) image, with fixed targets.

    With `levels` (coarse to fine, at a scale above the base) the style term also matches the style on
    the image shrunk to each level's size, against the style sized for a painting of that size, weighted
    `params.multiscale_levels` × the style's own weights and counted in the style loss.

    With `temporal` (a clip's frame after the first: the previous painted frame warped to this one and the
    (H, W) mask of where the flow is reliable, both at the canvas's size) the objective adds
    `temporal_loss`, weighted `params.temporal_weight`. `grams` are the style's targets when the caller
    already has them (a clip's frames share them); else they are taken from `styles`.

    Targets and weights are tensors handed to the compiled functions as arguments, so one trace serves
    every job with the same `Structure` (see `compiled`).
    """

    def __init__(
        self,
        network: VGG19,
        content: np.ndarray,
        styles: Sequence[np.ndarray],
        params: StyleParams,
        levels: Sequence[LevelInput] = (),
        grams: Grams | None = None,
        temporal: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        content_weights, style_weights, blend = layer_weights(params, len(styles))
        levels = levels if params.multiscale_levels > 0 else ()  # weight 0: exactly the plain objective
        self.network = network
        dtype = resolve(params.precision)
        self.structure = Structure(
            params.pooling,
            tuple(content_weights),
            tuple(style_weights),
            len(styles),
            dtype.name,
            len(levels),
            temporal is not None,
            params.style_loss,
            params.gram_layers,
        )
        structure = self.structure
        # The sliced loss's directions: drawn once per objective (so per scale), the same for every style
        # and level, and fixed while it is minimised, so L-BFGS's history stays valid.
        rng = np.random.default_rng(params.seed)
        directions = {
            layer: draw_directions(int(network.kernels["conv" + layer[4:]].shape[3]), rng)
            for j, layer in enumerate(style_weights)
            if structure.sliced(j)
        }

        # Targets in the same number format as the image's features, so a perfect match scores zero.
        def style_grams(images: Sequence[np.ndarray]) -> Grams:
            out = []
            for style in images:
                style_batch = tf.constant(network.preprocess(style))
                sfeats = network.features(style_batch, style_weights, params.pooling, dtype)
                out.append(
                    tuple(
                        (tf.constant(directions[layer]), sorted_projections(sfeats[layer], directions[layer]))
                        if structure.sliced(j)
                        else gram(sfeats[layer])
                        for j, layer in enumerate(style_weights)
                    )
                )
            return tuple(out)

        content_batch = tf.constant(network.preprocess(content))
        feats = network.features(content_batch, content_weights, params.pooling, dtype)
        previous: Temporal = ()
        if temporal is not None:
            warped, mask = temporal
            weights = params.temporal_weight * mask[np.newaxis, :, :, np.newaxis]
            previous = (tf.constant(network.preprocess(warped)), tf.constant(weights, tf.float32))
        self.targets: Targets = (
            tuple(feats[layer] for layer in content_weights),
            style_grams(styles) if grams is None else grams,
            tuple((tf.constant(shape, tf.int32), style_grams(sized)) for shape, sized in levels),
            previous,
        )
        self.coefficients: Coefficients = (
            tf.constant([params.content_weight * w for w in content_weights.values()], tf.float32),
            tf.constant(
                [[params.style_weight * b * w for w in style_weights.values()] for b in blend], tf.float32
            ),
            tf.constant(params.tv_weight, tf.float32),
            tf.constant(params.multiscale_levels, tf.float32),
        )

    def __call__(self, image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(content, style, tv) losses, each already multiplied by its weight."""
        return objective_parts(self.network, self.structure, image, self.targets, self.coefficients)


def objective_parts(
    network: VGG19, structure: Structure, image: tf.Tensor, targets: Targets, coefficients: Coefficients
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """anishathalye/neural-style's three weighted losses (the coarser levels' in the style loss); only the
    layers up to the deepest one used are computed."""
    content_targets, style_targets, level_targets, _ = targets
    content_coef, style_coef, tv_coef, level_coef = coefficients
    dtype = tf.as_dtype(structure.dtype)
    layers = set(structure.content_layers) | set(structure.style_layers)
    feats = network.features(image, layers, structure.pooling, dtype)
    content = tf.constant(0.0)
    for i, (layer, target) in enumerate(zip(structure.content_layers, content_targets, strict=True)):
        content += content_coef[i] * tf.reduce_sum(tf.square(feats[layer] - target)) / _size(target)

    def term(features: Sequence[tf.Tensor], targets: Grams) -> tf.Tensor:
        if structure.style_loss == "sliced":
            return sliced_style_loss(features, targets, style_coef, structure.gram_layers)
        return style_loss(features, targets, style_coef)

    style = term([feats[layer] for layer in structure.style_layers], style_targets)
    for size, grams in level_targets:
        # (1, h, w, 3): antialiased, so every pixel of the image gets a share of the level's gradient.
        small = tf.image.resize(image, size, method=LEVEL_FILTER, antialias=True)
        found = network.features(small, structure.style_layers, structure.pooling, dtype)
        level = term([found[layer] for layer in structure.style_layers], grams)
        style += level_coef * level
    return content, style, tv_coef * total_variation(image)


def temporal_loss(image: tf.Tensor, temporal: Temporal) -> tf.Tensor:
    """Ruder et al. 2016's short-term temporal loss: mean over pixels and channels of weight · (x − w)²,
    w the previous painted frame warped to this one (both preprocessed, so in pixel units)."""
    warped, weights = temporal
    return tf.reduce_mean(weights * tf.square(image - warped))


def style_loss(features: Sequence[tf.Tensor], targets: Grams, coefficients: tf.Tensor) -> tf.Tensor:
    """Σ over styles s and layers j of coefficients[s, j] · ‖G(features[j]) − targets[s][j]‖² / c²."""
    grams = [gram(f) for f in features]  # (c, c) per style layer
    loss = tf.constant(0.0)
    for s, style_grams in enumerate(targets):
        for j, (ours, target) in enumerate(zip(grams, style_grams, strict=True)):
            loss += coefficients[s, j] * gram_distance(ours, target)
    return loss


def gram_distance(ours: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """‖ours − target‖² / c² for two (c, c) Grams: one layer's Gram style term before its weight."""
    return tf.reduce_sum(tf.square(ours - target)) / _size(target)


def sliced_style_loss(
    features: Sequence[tf.Tensor], targets: Grams, coefficients: tf.Tensor, gram_layers: int = 0
) -> tf.Tensor:
    """Σ over styles s and layers j of coefficients[s, j] · SCALE · the sliced Wasserstein distance of
    features[j] to the style's sorted projections (engine.sliced); the first `gram_layers` layers by
    `style_loss`'s Gram term instead."""
    loss = tf.constant(0.0)
    for s, style_targets in enumerate(targets):
        for j, (ours, target) in enumerate(zip(features, style_targets, strict=True)):
            if j < gram_layers:
                assert isinstance(target, tf.Tensor)
                loss += coefficients[s, j] * gram_distance(gram(ours), target)
            else:
                directions, sorted_target = target
                loss += coefficients[s, j] * SCALE * sliced_distance(ours, directions, sorted_target)
    return loss


def total_variation(image: tf.Tensor) -> tf.Tensor:
    """Mean squared difference of vertical plus horizontal neighbours (anishathalye/neural-style's
    2·l2_loss / size)."""
    dy = image[:, 1:, :, :] - image[:, :-1, :, :]
    dx = image[:, :, 1:, :] - image[:, :, :-1, :]
    return tf.reduce_sum(tf.square(dy)) / _size(dy) + tf.reduce_sum(tf.square(dx)) / _size(dx)


def _size(x: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.size(x), tf.float32)
