"""The VGG-19 feature extractor, built from `VGGWeights` and computing only the layers a caller asks for."""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import numpy as np
import tensorflow as tf

from engine.weights import LAYERS, VGGWeights


class VGG19:
    """Conv/ReLU/pool stack of VGG-19 up to relu5_4; every shape comes from the weights."""

    def __init__(self, weights: VGGWeights) -> None:
        # Variables, not constants: traced functions capture them by reference instead of copying
        # ~80 MB of kernels into every graph.
        self.kernels = {n: tf.Variable(k, trainable=False, name=n) for n, k in weights.kernels.items()}
        self.biases = {n: tf.Variable(b, trainable=False, name=f"{n}_b") for n, b in weights.biases.items()}
        self.mean_pixel = weights.mean_pixel.astype(np.float32)  # (3,) RGB
        self.source = weights.source
        # The same kernels and biases in bfloat16, made on first use (see `features`).
        self._cast: dict[tf.DType, tuple[dict[str, tf.Variable], dict[str, tf.Variable]]] = {}
        # Compiled functions traced on this network, by what they compute (filled by engine.stylize).
        self.compiled: dict[Hashable, object] = {}

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) RGB 0..255 → (1, H, W, 3) mean-subtracted network input."""
        return (image - self.mean_pixel)[np.newaxis].astype(np.float32)

    def unprocess(self, batch: np.ndarray) -> np.ndarray:
        """(1, H, W, 3) network input → (H, W, 3) RGB 0..255 (not clipped)."""
        return (batch[0] + self.mean_pixel).astype(np.float32)

    def features(
        self, image: tf.Tensor, layers: Iterable[str], pooling: str = "max", dtype: tf.DType = tf.float32
    ) -> dict[str, tf.Tensor]:
        """Activations of `layers` for a preprocessed (1, H, W, 3) batch; stops at the deepest one asked.

        The convolutions and activations run in `dtype` (float32 or bfloat16); the returned activations
        are float32 whatever it is, so Grams and losses are summed in float32.
        """
        wanted = set(layers)
        unknown = wanted - set(LAYERS)
        if unknown:
            raise ValueError(f"unknown VGG-19 layers: {sorted(unknown)}")
        deepest = max(LAYERS.index(name) for name in wanted)
        kernels, biases = self._weights(dtype)
        out: dict[str, tf.Tensor] = {}
        x = tf.cast(image, dtype)
        for name in LAYERS[: deepest + 1]:
            kind = name[:4]
            if kind == "conv":
                x = tf.nn.bias_add(tf.nn.conv2d(x, kernels[name], strides=1, padding="SAME"), biases[name])
            elif kind == "relu":
                x = tf.nn.relu(x)
            elif pooling == "avg":
                x = tf.nn.avg_pool2d(x, ksize=2, strides=2, padding="SAME")
            else:
                x = tf.nn.max_pool2d(x, ksize=2, strides=2, padding="SAME")
            if name in wanted:
                out[name] = tf.cast(x, tf.float32)
        return out

    def _weights(self, dtype: tf.DType) -> tuple[dict[str, tf.Variable], dict[str, tf.Variable]]:
        """Kernels and biases in `dtype`: cast once, not on every step."""
        if dtype == tf.float32:
            return self.kernels, self.biases
        if dtype not in self._cast:
            with tf.init_scope():  # also when first asked inside a traced function
                self._cast[dtype] = (
                    {n: tf.Variable(tf.cast(k, dtype), trainable=False) for n, k in self.kernels.items()},
                    {n: tf.Variable(tf.cast(b, dtype), trainable=False) for n, b in self.biases.items()},
                )
        return self._cast[dtype]


def gram(features: tf.Tensor) -> tf.Tensor:
    """(1, H, W, C) → (C, C) Gram matrix divided by H·W·C, as anishathalye/neural-style normalises it."""
    channels = tf.shape(features)[-1]
    flat = tf.reshape(features, (-1, channels))  # (H·W, C)
    size = tf.cast(tf.size(features), tf.float32)
    return tf.matmul(flat, flat, transpose_a=True) / size
