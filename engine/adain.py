"""AdaIN (Huang & Belongie 2017): a feed-forward stylisation from VGG-19's relu4_1 and a trained decoder.

One pass instead of an optimisation: encode the content and the styles to relu4_1, give the content's
features the styles' per-channel mean and standard deviation, and decode that back to pixels. The engine
uses it as an instant preview and as the image the optimisation starts from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from engine import images
from engine.inputs import style_size
from engine.multiscale import sides
from engine.params import StyleParams
from engine.precision import resolve
from engine.weights import DECODER_LAYERS, DECODER_UPSAMPLE, LAYERS, DecoderWeights, VGGWeights, check_pair

__all__ = ["AdaIN", "DecoderWeights", "adain", "initial_from_adain", "moments"]

# Added to the variance before its square root, as in the training code (calc_mean_std).
EPS = 1e-5
# The encoder is VGG-19 up to relu4_1: three poolings, so the decoder's output is 8× its input.
ENCODER_LAYERS: tuple[str, ...] = LAYERS[: LAYERS.index("relu4_1") + 1]
SCALE = 8
# The least side the network takes: 16 → 8 → 4 → 2 px at relu4_1, and reflection padding by 1 needs 2.
MIN_SIDE = 16

_BATCH = tf.TensorSpec((1, None, None, 3), tf.float32)


def moments(features: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-channel mean and standard deviation of (1, h, w, C) features over h and w, each (C,).

    The variance is the unbiased one plus `EPS`, as torch's `var` in the code the decoder was trained with.
    """
    flat = tf.reshape(features, (-1, tf.shape(features)[-1]))  # (h·w, C)
    mean = tf.reduce_mean(flat, axis=0)
    count = tf.cast(tf.shape(flat)[0], flat.dtype)
    variance = tf.reduce_sum(tf.square(flat - mean), axis=0) / tf.maximum(count - 1.0, 1.0)
    return mean, tf.sqrt(variance + EPS)


def _transform(content: tf.Tensor, mean: tf.Tensor, std: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    """The content's (1, h, w, C) features with the target per-channel statistics, blended by `alpha`."""
    content_mean, content_std = moments(content)
    target = (content - content_mean) / content_std * std + mean
    return alpha * target + (1.0 - alpha) * content


def adain(content_feats: tf.Tensor, style_feats: tf.Tensor, alpha: float = 1.0) -> tf.Tensor:
    """Adaptive instance normalisation: `(c - mean(c)) / std(c) * std(s) + mean(s)`, blended with c by alpha.

    Both are (1, h, w, C) features (the sizes may differ); the result has the content's shape.
    """
    mean, std = moments(tf.convert_to_tensor(style_feats, tf.float32))
    return _transform(tf.convert_to_tensor(content_feats, tf.float32), mean, std, tf.constant(alpha))


@dataclass(frozen=True)
class _Layers:
    """The encoder's and the decoder's kernels and biases, by layer name, in one number format."""

    encoder: dict[str, tf.Variable]
    encoder_b: dict[str, tf.Variable]
    decoder: dict[str, tf.Variable]
    decoder_b: dict[str, tf.Variable]

    def cast(self, dtype: tf.DType) -> _Layers:
        def copy(weights: dict[str, tf.Variable]) -> dict[str, tf.Variable]:
            return {n: tf.Variable(tf.cast(w, dtype), trainable=False) for n, w in weights.items()}

        return _Layers(copy(self.encoder), copy(self.encoder_b), copy(self.decoder), copy(self.decoder_b))


def _reflect(x: tf.Tensor) -> tf.Tensor:
    return tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")


class AdaIN:
    """The encoder (VGG-19 to relu4_1, reflection-padded) and the decoder, compiled once for any size."""

    def __init__(self, vgg: VGGWeights, decoder: DecoderWeights) -> None:
        check_pair(vgg, decoder)
        self.mean_pixel = vgg.mean_pixel.astype(np.float32)  # (3,) RGB
        self.source = f"{vgg.source} + {decoder.source}"
        # Variables, as in VGG19: traced functions capture them by reference.
        convs = [name for name in ENCODER_LAYERS if name.startswith("conv")]
        self._float32 = _Layers(
            {n: tf.Variable(vgg.kernels[n], trainable=False, name=n) for n in convs},
            {n: tf.Variable(vgg.biases[n], trainable=False, name=f"{n}_b") for n in convs},
            {n: tf.Variable(decoder.kernels[n], trainable=False, name=n) for n in DECODER_LAYERS},
            {n: tf.Variable(decoder.biases[n], trainable=False, name=f"{n}_b") for n in DECODER_LAYERS},
        )
        self.channels = decoder.in_channels
        # Per number format of the convolutions: its weights and the two compiled passes (made on first use).
        self._compiled: dict[tf.DType, tuple[Callable[..., tf.Tensor], Callable[..., tf.Tensor]]] = {}

    def _functions(self, dtype: tf.DType) -> tuple[Callable[..., tf.Tensor], Callable[..., tf.Tensor]]:
        """The compiled encoder and whole pass with convolutions in `dtype`; statistics stay float32."""
        if dtype not in self._compiled:
            layers = self._float32 if dtype == tf.float32 else self._float32.cast(dtype)

            def encode(x: tf.Tensor) -> tf.Tensor:
                return tf.cast(self._encode(tf.cast(x, dtype), layers), tf.float32)

            def stylise(x: tf.Tensor, mean: tf.Tensor, std: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
                features = _transform(encode(x), mean, std, alpha)
                return tf.cast(self._decode(tf.cast(features, dtype), layers), tf.float32)

            channels = tf.TensorSpec((self.channels,), tf.float32)
            scalar = tf.TensorSpec((), tf.float32)
            # Unknown height and width in the signatures: one trace serves every image size.
            self._compiled[dtype] = (
                tf.function(encode, input_signature=[_BATCH]),
                tf.function(stylise, input_signature=[_BATCH, channels, channels, scalar]),
            )
        return self._compiled[dtype]

    @staticmethod
    def _encode(x: tf.Tensor, layers: _Layers) -> tf.Tensor:
        """(1, H, W, 3) mean-subtracted RGB 0..255 → (1, ⌈H/8⌉, ⌈W/8⌉, C) relu4_1 features.

        This input is the original's RGB in [0, 1] after its layer 0, a 1×1 conv to BGR×255 minus the mean
        that our conv1_1 absorbed by taking RGB (see torch_legacy); being 1×1, it commutes with the padding.
        """
        for name in ENCODER_LAYERS:
            if name.startswith("conv"):
                x = tf.nn.conv2d(_reflect(x), layers.encoder[name], strides=1, padding="VALID")
                x = tf.nn.bias_add(x, layers.encoder_b[name])
            elif name.startswith("relu"):
                x = tf.nn.relu(x)
            else:
                # torch's MaxPool2d(2, 2, ceil_mode=True): an odd side gets a last window of one pixel.
                # SAME pads that side at the bottom/right only, and max pooling ignores the padding.
                x = tf.nn.max_pool2d(x, ksize=2, strides=2, padding="SAME")
        return x

    @staticmethod
    def _decode(x: tf.Tensor, layers: _Layers) -> tf.Tensor:
        """(1, h, w, C) features → (1, 8h, 8w, 3) RGB, about [0, 1]."""
        for name in DECODER_LAYERS:
            x = tf.nn.conv2d(_reflect(x), layers.decoder[name], strides=1, padding="VALID")
            x = tf.nn.bias_add(x, layers.decoder_b[name])
            if name != DECODER_LAYERS[-1]:
                x = tf.nn.relu(x)
            if name in DECODER_UPSAMPLE:
                x = tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)  # nearest-neighbour 2×
        return x

    def encode(self, image: np.ndarray, precision: str = "auto") -> np.ndarray:
        """(H, W, 3) RGB 0..255 → its (1, ⌈H/8⌉, ⌈W/8⌉, C) relu4_1 features; each side at least 9 px."""
        if min(image.shape[:2]) < 9:
            raise ValueError(f"the encoder needs at least 9×9 pixels, got {image.shape[1]}×{image.shape[0]}")
        encode, _ = self._functions(resolve(precision))
        return encode(self._preprocess(image)).numpy()

    def style_target(
        self,
        styles: Sequence[np.ndarray],
        blend_weights: Sequence[float] | None = None,
        precision: str = "auto",
    ) -> tuple[np.ndarray, np.ndarray]:
        """The relu4_1 mean and standard deviation, each (C,), the blended styles ask for.

        AdaIN is affine in the target statistics, so blending them is blending the styles' AdaIN outputs.
        """
        weights = _normalised(blend_weights, len(styles))
        encode, _ = self._functions(resolve(precision))
        mean, std = np.zeros(self.channels, np.float32), np.zeros(self.channels, np.float32)
        for style, weight in zip(styles, weights, strict=True):
            style_mean, style_std = moments(encode(self._preprocess(_pad(style, 1))))
            mean += np.float32(weight) * style_mean.numpy()
            std += np.float32(weight) * style_std.numpy()
        return mean, std

    def preview(
        self,
        content: np.ndarray,
        styles: Sequence[np.ndarray],
        alpha: float = 1.0,
        blend_weights: Sequence[float] | None = None,
        preserve_colors: bool = False,
        max_size: int = StyleParams.max_size,
        style_scales: Sequence[float] | None = None,
        precision: str = "auto",
        target: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """The content repainted in one pass: (H, W, 3) float32 RGB 0..255 at the content's size.

        `content` and `styles` are (H, W, 3) RGB 0..255 at any size. The content is scaled to `max_size`
        and each style to scale × its width, as the optimisation does; `alpha` in [0, 1] is the strength.
        `precision` is the convolutions' number format, as `StyleParams.precision`. `target`: the styles'
        statistics from `sized_target` for this content size, when already taken (a clip's frames share
        them).
        """
        if not 0.0 <= alpha <= 1.0:
            raise ValueError("alpha must be within [0, 1]")
        content = images.fit_long_side(content, max_size)
        height, width = content.shape[:2]
        mean, std = target or self.sized_target(content.shape, styles, blend_weights, style_scales, precision)
        _, stylise = self._functions(resolve(precision))
        # The decoder gives 8× the relu4_1 size: reflect-pad the content to a multiple of 8 so nothing
        # is pooled from a partial window, and crop the output back to the content's exact size.
        batch = self._preprocess(_pad(content, SCALE))
        out = stylise(batch, mean, std, tf.constant(alpha, tf.float32)).numpy()
        image = np.clip(out[0, :height, :width] * 255.0, 0.0, 255.0).astype(np.float32)
        return images.preserve_colors(content, image) if preserve_colors else image

    def frames_painter(
        self, styles: Sequence[np.ndarray], alpha: float, params: StyleParams
    ) -> Callable[[np.ndarray], np.ndarray]:
        """A clip's frames, each painted in one pass as `preview` paints a picture with `params`' options.
        The styles' statistics depend only on the frame's size, the same for every frame of a clip: they
        are taken once (encoding the styles again would cost about as much as the frame)."""
        targets: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}

        def paint(frame: np.ndarray) -> np.ndarray:
            shape = (*images.fitted_size(frame.shape, params.max_size), 3)  # the size `preview` paints at
            if shape not in targets:
                targets[shape] = self.sized_target(
                    shape, styles, params.style_blend_weights, params.style_scales, params.precision
                )
            return self.preview(
                frame,
                styles,
                alpha,
                preserve_colors=params.preserve_colors,
                max_size=params.max_size,
                precision=params.precision,
                target=targets[shape],
            )

        return paint

    def sized_target(
        self,
        shape: tuple[int, ...],
        styles: Sequence[np.ndarray],
        blend_weights: Sequence[float] | None = None,
        style_scales: Sequence[float] | None = None,
        precision: str = "auto",
    ) -> tuple[np.ndarray, np.ndarray]:
        """`style_target` of the styles each sized to scale × the width of a content of `shape`, as
        `preview` takes them."""
        if not styles:
            raise ValueError("at least one style image is needed")
        scales = list(style_scales or (1.0,) * len(styles))
        if len(scales) != len(styles):
            raise ValueError(f"{len(scales)} style scales for {len(styles)} style images")
        sized = [
            images.resize(style, style_size(style.shape, shape, scale))
            for style, scale in zip(styles, scales, strict=True)
        ]
        return self.style_target(sized, blend_weights, precision)

    def _preprocess(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) RGB 0..255 → (1, H, W, 3) mean-subtracted, the input our conv1_1 takes."""
        return (image - self.mean_pixel)[np.newaxis].astype(np.float32)


def initial_from_adain(
    model: AdaIN,
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    params: StyleParams,
    alpha: float = 1.0,
) -> np.ndarray:
    """The (H, W, 3) RGB 0..255 image to start the optimisation from, at the size its first scale has.

    Colours are not preserved here even if `params` ask: the optimisation pulls towards the style's
    colours either way and restores the content's on its result.
    """
    long_side = min(params.max_size, max(content.shape[:2]))
    first = sides(long_side, params.multiscale_base)[0] if params.multiscale else long_side
    return model.preview(
        content,
        styles,
        alpha,
        blend_weights=params.style_blend_weights,
        max_size=first,
        style_scales=params.style_scales,
        precision=params.precision,
    )


def _pad(image: np.ndarray, multiple: int) -> np.ndarray:
    """Reflect-pad the bottom and right so each side is a multiple of `multiple` and at least `MIN_SIDE`."""
    height, width = image.shape[:2]
    target = [max(MIN_SIDE, -(-side // multiple) * multiple) for side in (height, width)]
    return np.pad(image, ((0, target[0] - height), (0, target[1] - width), (0, 0)), mode="reflect")


def _normalised(weights: Sequence[float] | None, count: int) -> list[float]:
    blend = list(weights or (1.0,) * count)
    if len(blend) != count:
        raise ValueError(f"{len(blend)} style blend weights for {count} style images")
    if any(w < 0 for w in blend) or sum(blend) <= 0:
        raise ValueError("style blend weights must be non-negative with a positive sum")
    return [w / sum(blend) for w in blend]
