"""Random weights with the real networks' layer structure, narrow enough for tests and benchmarks on CPU."""

from __future__ import annotations

import numpy as np

from engine.weights.canonical import CONV_LAYERS, DECODER_LAYERS, DecoderWeights, VGGWeights


def synthetic(channels: int = 4, seed: int = 0, source: str = "synthetic") -> VGGWeights:
    """Random He-initialised weights with VGG-19's layer structure and `channels`..8×`channels` widths.

    Used by tests and the load benchmark: shapes are derived from weights everywhere, so a narrow network
    exercises exactly the code paths of the real one.
    """
    rng = np.random.default_rng(seed)
    kernels: dict[str, np.ndarray] = {}
    biases: dict[str, np.ndarray] = {}
    in_channels = 3
    for name in CONV_LAYERS:
        block = int(name[4])
        out_channels = channels * min(2 ** (block - 1), 8)
        scale = np.sqrt(2.0 / (9 * in_channels))
        kernels[name] = (rng.standard_normal((3, 3, in_channels, out_channels)) * scale).astype(np.float32)
        biases[name] = (rng.standard_normal(out_channels) * 0.01).astype(np.float32)
        in_channels = out_channels
    mean = np.array([123.68, 116.779, 103.939], dtype=np.float32)
    return VGGWeights(kernels=kernels, biases=biases, mean_pixel=mean, source=source)


def synthetic_decoder(channels: int = 4, seed: int = 0, source: str = "synthetic") -> DecoderWeights:
    """Random weights with the AdaIN decoder's structure for `synthetic(channels)`'s 8×`channels` relu4_1."""
    rng = np.random.default_rng(seed)
    widths = (8, 4, 4, 4, 4, 2, 2, 1, 1)  # input widths in units of `channels`; dec1_1 gives RGB
    kernels: dict[str, np.ndarray] = {}
    biases: dict[str, np.ndarray] = {}
    for i, name in enumerate(DECODER_LAYERS):
        in_channels = channels * widths[i]
        out_channels = channels * widths[i + 1] if i + 1 < len(widths) else 3
        scale = np.sqrt(2.0 / (9 * in_channels))
        kernels[name] = (rng.standard_normal((3, 3, in_channels, out_channels)) * scale).astype(np.float32)
        biases[name] = (rng.standard_normal(out_channels) * 0.01).astype(np.float32)
    # `synthetic`'s relu4_1 features are ~30, not ~1 as the normalised network's: scale the output layer
    # so they decode to about the [0, 1] the real decoder gives, rather than to clipped black and white.
    kernels["dec1_1"] *= np.float32(0.03)
    biases["dec1_1"] += np.float32(0.5)
    return DecoderWeights(kernels=kernels, biases=biases, source=source)
