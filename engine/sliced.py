"""The sliced Wasserstein style loss of Heitz et al. (CVPR 2021, "A Sliced Wasserstein Loss for Neural
Texture Synthesis"): the whole distribution of a layer's features matched, not only its second moments.

A layer's features F (N positions × C channels) are projected on C random unit directions and each
projection is sorted over the positions: the sorted values are that projection's quantile function, and
the mean squared difference of two of them is the squared 1-D Wasserstein-2 distance along it. Gram
matrices only match second moments, so a Gram-matched texture can lose the style's contrast and spread
into a uniform cell; sorted projections keep the shape of every marginal.

Departures from the reference code (tchambon/A-Sliced-Wasserstein-Loss-for-Neural-Texture-Synthesis):
the directions are drawn once per scale, not after every 64 L-BFGS steps, so the on-device L-BFGS history
stays valid (bench/notes/style-loss.md compares the two); the style's sorted values are resampled to the
painting's count by linear quantile interpolation; and at large layers only a fixed random subset of
positions is sorted (`SORT_BUDGET`), because a sort on a CPU costs more than the layer's convolutions.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# At most this many projected values (positions × channels) are sorted per layer and evaluation; a layer
# with more positions keeps a fixed random subset of SORT_BUDGET / C of them (16384 at relu1_1, 2048 at
# relu4_1). A full sort of relu1_1 at 512 px (226k × 64 values) takes ~5 s on a 2-core CPU, the whole
# VGG step ~3 s; at this budget the five sorts add ~1 s. The subset depends only on the layer's shape, so
# the objective stays a fixed function for L-BFGS.
SORT_BUDGET = 2**20
# The sliced term is multiplied by this, so that a style_weight weighs it as much as the Gram term: on
# three pairs of the shared images at 512 px, Gram term / sliced term at the content image and at the
# AdaIN start ranged 0.9e-4–2.5e-4, geometric mean 1.8e-4 (bench/notes/style-loss.md).
SCALE = 2e-4


def draw_directions(channels: int, rng: np.random.Generator) -> np.ndarray:
    """(C, C) float32: C directions uniform on the unit sphere, one per column."""
    directions = rng.standard_normal((channels, channels))
    return (directions / np.linalg.norm(directions, axis=0, keepdims=True)).astype(np.float32)


def sorted_projections(features: tf.Tensor, directions: np.ndarray) -> tf.Tensor:
    """The style's target: (1, H, W, C) features → (H·W, C) projections on `directions`, each column
    sorted ascending. Taken once per style and scale, on all positions (numpy's sort: a few times faster
    than TensorFlow's on a CPU)."""
    flat = tf.reshape(features, (-1, directions.shape[0]))  # (N, C)
    projected = tf.matmul(flat, directions).numpy()  # as `sliced_distance` projects, to the last bit
    return tf.constant(np.sort(projected, axis=0), tf.float32)


def resample(values: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
    """(M, C) sorted columns → (count, C): each column's quantile function read at the `count` midpoints
    (i + ½) / count, linearly interpolated; the identity when count == M."""
    m = tf.shape(values)[0]
    at = (tf.range(count, dtype=tf.float32) + 0.5) * tf.cast(m, tf.float32) / tf.cast(count, tf.float32)
    at = tf.clip_by_value(at - 0.5, 0.0, tf.cast(m - 1, tf.float32))  # (count,) fractional row index
    below = tf.cast(tf.floor(at), tf.int32)
    above = tf.minimum(below + 1, m - 1)
    share = (at - tf.cast(below, tf.float32))[:, tf.newaxis]  # (count, 1)
    return tf.gather(values, below) * (1.0 - share) + tf.gather(values, above) * share


def subset(flat: tf.Tensor, limit: tf.Tensor) -> tf.Tensor:
    """(N, C) → (min(N, limit), C): a random subset of the rows, the same one for every call with this N."""
    n = tf.shape(flat)[0]
    scores = tf.random.stateless_uniform((n,), seed=(n, 0))  # (N,) fixed by N alone
    keep = tf.math.top_k(scores, tf.minimum(n, limit), sorted=False).indices
    return tf.gather(flat, keep)


def sliced_distance(features: tf.Tensor, directions: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Mean over positions and directions of (sorted projection of `features` − the style's)², float32.

    `features` (1, H, W, C); `directions` (C, C); `target` (M, C), the style's `sorted_projections`.
    """
    channels = tf.shape(directions)[0]
    flat = subset(tf.reshape(features, (-1, channels)), SORT_BUDGET // channels)  # (n, C)
    ours = tf.sort(tf.matmul(flat, directions), axis=0)  # (n, C)
    theirs = resample(target, tf.shape(ours)[0])  # (n, C)
    return tf.reduce_mean(tf.square(ours - theirs))
