"""The Gatys et al. optimisation: content + style + total-variation loss on VGG-19 features, by Adam.

The objective is the seed's (anishathalye/neural-style's stylize.py) term for term, so loss values compare
number for number; the optimisation runs as one compiled TensorFlow step per iteration.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from engine.images import fit_long_side, preserve_colors, resize
from engine.params import STYLE_LAYERS, Losses, StyleParams
from engine.vgg import VGG19, gram


class Cancelled(Exception):
    """The caller asked to stop; raised out of the optimisation between two iterations."""


@dataclass(frozen=True)
class Progress:
    """One finished iteration; `image` (H, W, 3) float32 RGB 0..255 is set on previews and the last."""

    iteration: int  # 1-based count of finished iterations
    total: int
    losses: Losses  # of the image the iteration started from
    image: np.ndarray | None = None


@dataclass(frozen=True)
class Result:
    """The output of `stylize`."""

    image: np.ndarray  # (H, W, 3) float32 RGB 0..255, the lowest-loss image seen
    losses: Losses  # of that image
    iterations: int
    seconds: float


def prepare(
    content: np.ndarray, styles: Sequence[np.ndarray], params: StyleParams
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Scale the content to `max_size`, each style to scale × the content's width (as the seed's CLI)."""
    if not styles:
        raise ValueError("at least one style image is needed")
    content = fit_long_side(content, params.max_size)
    scales = params.style_scales or (1.0,) * len(styles)
    if len(scales) != len(styles):
        raise ValueError(f"{len(scales)} style scales for {len(styles)} style images")
    sized = []
    for style, scale in zip(styles, scales, strict=True):
        factor = scale * content.shape[1] / style.shape[1]
        height = max(1, round(style.shape[0] * factor))
        width = max(1, round(style.shape[1] * factor))
        sized.append(resize(style, (height, width)))
    return content, sized


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


class Objective:
    """content + style + TV loss of a preprocessed (1, H, W, 3) image, with fixed targets."""

    def __init__(
        self, network: VGG19, content: np.ndarray, styles: Sequence[np.ndarray], params: StyleParams
    ) -> None:
        self.network = network
        self.params = params
        self.content_layers, self.style_layers, self.blend = layer_weights(params, len(styles))
        self.layers = sorted(set(self.content_layers) | set(self.style_layers))
        # Targets, once per job: content features (1, h, w, c) and one (c, c) Gram per style layer.
        feats = network.features(
            tf.constant(network.preprocess(content)), self.content_layers, params.pooling
        )
        self.content_targets = {layer: feats[layer] for layer in self.content_layers}
        self.style_targets: list[dict[str, tf.Tensor]] = []
        for style in styles:
            sfeats = network.features(
                tf.constant(network.preprocess(style)), self.style_layers, params.pooling
            )
            self.style_targets.append({layer: gram(sfeats[layer]) for layer in self.style_layers})

    def __call__(self, image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(content, style, tv) losses, each already multiplied by its weight."""
        p = self.params
        feats = self.network.features(image, self.layers, p.pooling)
        content = tf.constant(0.0)
        for layer, w in self.content_layers.items():
            target = self.content_targets[layer]
            content += w * p.content_weight * tf.reduce_sum(tf.square(feats[layer] - target)) / _size(target)
        style = tf.constant(0.0)
        grams = {layer: gram(feats[layer]) for layer in self.style_layers}
        for blend, targets in zip(self.blend, self.style_targets, strict=True):
            per_style = tf.constant(0.0)
            for layer, w in self.style_layers.items():
                target = targets[layer]
                per_style += w * tf.reduce_sum(tf.square(grams[layer] - target)) / _size(target)
            style += p.style_weight * blend * per_style
        tv = p.tv_weight * total_variation(image)
        return content, style, tv


def total_variation(image: tf.Tensor) -> tf.Tensor:
    """Mean squared difference of vertical plus horizontal neighbours (the seed's 2·l2_loss / size)."""
    dy = image[:, 1:, :, :] - image[:, :-1, :, :]
    dx = image[:, :, 1:, :] - image[:, :, :-1, :]
    return tf.reduce_sum(tf.square(dy)) / _size(dy) + tf.reduce_sum(tf.square(dx)) / _size(dx)


def _size(x: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.size(x), tf.float32)


def initial_image(network: VGG19, content: np.ndarray, params: StyleParams) -> np.ndarray:
    """The preprocessed (1, H, W, 3) start image: content blended with N(0, 0.256²) noise as the seed does."""
    rng = np.random.default_rng(params.seed)
    noise = rng.standard_normal((1, *content.shape)).astype(np.float32) * 0.256
    if params.initial == "noise":
        return noise
    blend = params.initial_noiseblend
    return (network.preprocess(content) * (1.0 - blend) + noise * blend).astype(np.float32)


def iterate(
    network: VGG19,
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    params: StyleParams,
    should_cancel: Callable[[], bool] | None = None,
) -> Iterator[Progress]:
    """Run the optimisation, yielding after every iteration; the last `Progress` carries the result image.

    `content` and `styles` are (H, W, 3) RGB arrays at their original size; they are scaled here.
    `should_cancel` is checked before every iteration and makes this raise `Cancelled`.
    """
    content, styles = prepare(content, styles, params)
    objective = Objective(network, content, styles, params)
    image = tf.Variable(initial_image(network, content, params))
    step = _AdamStep(objective, image, params)

    def finish(batch: np.ndarray) -> np.ndarray:
        out = np.clip(network.unprocess(batch), 0.0, 255.0)
        return preserve_colors(content, out) if params.preserve_colors else out

    for i in range(1, params.iterations + 1):
        if should_cancel is not None and should_cancel():
            raise Cancelled
        parts = step().numpy()
        losses = Losses(*(float(x) for x in parts))
        preview = params.preview_every and i % params.preview_every == 0 and i < params.iterations
        if i < params.iterations:
            yield Progress(i, params.iterations, losses, finish(image.numpy()) if preview else None)
    # The step reports the loss of the image it started from; score the final image too and keep the best.
    content_loss, style_loss, tv_loss = (float(x) for x in objective(image))
    final = Losses(content_loss, style_loss, tv_loss, content_loss + style_loss + tv_loss)
    best_image, best_losses = step.best()
    if best_losses is None or final.total <= best_losses.total:
        best_image, best_losses = image.numpy(), final
    yield Progress(params.iterations, params.iterations, best_losses, finish(best_image))


class _AdamStep:
    """One compiled iteration: loss, gradient and the Adam update of tf.compat.v1.train.AdamOptimizer."""

    def __init__(self, objective: Objective, image: tf.Variable, params: StyleParams) -> None:
        self.image = image
        self.m = tf.Variable(tf.zeros_like(image))
        self.v = tf.Variable(tf.zeros_like(image))
        self.t = tf.Variable(0.0)
        self.best_image = tf.Variable(image)
        self.best_parts = tf.Variable(tf.fill((4,), np.inf))
        lr, b1, b2, eps = params.learning_rate, params.beta1, params.beta2, params.epsilon

        @tf.function
        def step() -> tf.Tensor:
            with tf.GradientTape() as tape:
                content, style, tv = objective(self.image)
                total = content + style + tv
            grad = tape.gradient(total, self.image)
            parts = tf.stack([content, style, tv, total])
            improved = total < self.best_parts[3]
            self.best_image.assign(tf.where(improved, self.image, self.best_image))
            self.best_parts.assign(tf.where(improved, parts, self.best_parts))
            self.t.assign_add(1.0)
            lr_t = lr * tf.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
            self.m.assign(b1 * self.m + (1.0 - b1) * grad)
            self.v.assign(b2 * self.v + (1.0 - b2) * tf.square(grad))
            self.image.assign_sub(lr_t * self.m / (tf.sqrt(self.v) + eps))
            return parts

        self._step = step

    def __call__(self) -> tf.Tensor:
        return self._step()

    def best(self) -> tuple[np.ndarray, Losses | None]:
        parts = self.best_parts.numpy()
        if not np.isfinite(parts[3]):
            return self.image.numpy(), None
        return self.best_image.numpy(), Losses(*(float(x) for x in parts))


def stylize(
    network: VGG19,
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    params: StyleParams,
    progress: Callable[[Progress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> Result:
    """Run `iterate` to the end, calling `progress` after every iteration; return the result."""
    start = time.perf_counter()
    last: Progress | None = None
    for last in iterate(network, content, styles, params, should_cancel):
        if progress is not None:
            progress(last)
    assert last is not None
    assert last.image is not None
    return Result(last.image, last.losses, params.iterations, time.perf_counter() - start)
