"""The objective's compiled TensorFlow functions: losses, loss and gradient, and the Adam step of
anishathalye/neural-style.

Traced once per network and structure, with height and width left unknown, and reused by every job.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from engine.objective import Coefficients, Objective, Structure, Targets, objective_parts, temporal_loss
from engine.vgg import VGG19

# Adam's state between calls: image, m, v, t, best image so far, its (content, style, tv, total).
AdamState = tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]


class Compiled:
    """The compiled functions of one `Structure` on one network, traced once and reused by every job.

    Height and width are left unknown in the input signatures, so one trace serves every image size and a
    long-lived worker never retraces (bench/bench_speed.py: no slower than a trace for one fixed size).
    The number of coarser levels is part of the `Structure` (a 2048 px job traces for 0, 1 and 2 levels,
    once per worker); their sizes are tensors like the image's.
    """

    def __init__(self, network: VGG19, structure: Structure, jit_compile: bool = False) -> None:
        def parts(image: tf.Tensor, targets: Targets, coefficients: Coefficients) -> tf.Tensor:
            content, style, tv = objective_parts(network, structure, image, targets, coefficients)
            total = content + style + tv
            if structure.temporal:  # a clip frame's: counted in the total, as `Losses` has no part for it
                total += temporal_loss(image, targets[3])
            return tf.stack([content, style, tv, total])  # (4,)

        def loss_and_grad(
            image: tf.Tensor, targets: Targets, coefficients: Coefficients
        ) -> tuple[tf.Tensor, tf.Tensor]:
            with tf.GradientTape() as tape:
                tape.watch(image)
                values = parts(image, targets, coefficients)
                total = values[3]
            return values, tape.gradient(total, image)

        def adam_step(
            state: AdamState, targets: Targets, coefficients: Coefficients, hyper: tf.Tensor
        ) -> tuple[AdamState, tf.Tensor]:
            """One step of tf.compat.v1.train.AdamOptimizer; (new state, (4,) losses of the old image)."""
            image, m, v, t, best_image, best_parts = state
            lr, b1, b2, eps = hyper[0], hyper[1], hyper[2], hyper[3]
            values, grad = loss_and_grad(image, targets, coefficients)
            improved = values[3] < best_parts[3]
            t += 1.0
            lr_t = lr * tf.sqrt(1.0 - b2**t) / (1.0 - b1**t)
            m = b1 * m + (1.0 - b1) * grad
            v = b2 * v + (1.0 - b2) * tf.square(grad)
            new = image - lr_t * m / (tf.sqrt(v) + eps)
            return (
                new,
                m,
                v,
                t,
                tf.where(improved, image, best_image),
                tf.where(improved, values, best_parts),
            ), values

        def adam_steps(
            state: AdamState, n: tf.Tensor, targets: Targets, coefficients: Coefficients, hyper: tf.Tensor
        ) -> tuple[AdamState, tf.Tensor]:
            """`n` Adam steps in one call, no host round trip between them; (new state, (n, 4) losses)."""
            history = tf.TensorArray(tf.float32, size=n)
            for i in tf.range(n):
                state, values = adam_step(state, targets, coefficients, hyper)
                history = history.write(i, values)
            return state, history.stack()

        image, targets, coefficients, state, hyper = _signatures(network, structure)
        # A while loop costs time on every step on a CPU (bench/bench_speed.py), so one step is its own
        # function; the loop pays off where a host round trip is dear (GPU).
        options = {"jit_compile": jit_compile}
        self.parts = tf.function(parts, input_signature=[image, targets, coefficients], **options)
        self.loss_and_grad = tf.function(
            loss_and_grad, input_signature=[image, targets, coefficients], **options
        )
        self.adam_step = tf.function(
            adam_step, input_signature=[state, targets, coefficients, hyper], **options
        )
        self.adam_steps = tf.function(
            adam_steps,
            input_signature=[state, tf.TensorSpec((), tf.int32), targets, coefficients, hyper],
            **options,
        )


def _signatures(network: VGG19, structure: Structure) -> tuple[Any, ...]:
    """TensorSpecs of the image, targets, coefficients, Adam state and Adam settings, any height and width."""

    def channels(layer: str) -> int:  # "relu4_2" → conv4_2's output channels
        return int(network.kernels["conv" + layer[4:]].shape[3])

    image = tf.TensorSpec((1, None, None, 3), tf.float32)

    def style_target(j: int, layer: str) -> Any:  # a Gram, or the sliced loss's directions and projections
        square = tf.TensorSpec((channels(layer),) * 2, tf.float32)
        if structure.sliced(j):
            return (square, tf.TensorSpec((None, channels(layer)), tf.float32))
        return square

    grams = tuple(
        tuple(style_target(j, layer) for j, layer in enumerate(structure.style_layers))
        for _ in range(structure.styles)
    )
    # Each coarser level's size is a tensor, not a constant, so its shape does not retrace either.
    level = (tf.TensorSpec((2,), tf.int32), grams)
    temporal = (image, tf.TensorSpec((1, None, None, 1), tf.float32)) if structure.temporal else ()
    targets = (
        tuple(
            tf.TensorSpec((1, None, None, channels(layer)), tf.float32) for layer in structure.content_layers
        ),
        grams,
        (level,) * structure.levels,
        temporal,
    )
    coefficients = (
        tf.TensorSpec((len(structure.content_layers),), tf.float32),
        tf.TensorSpec((structure.styles, len(structure.style_layers)), tf.float32),
        tf.TensorSpec((), tf.float32),
        tf.TensorSpec((), tf.float32),
    )
    scalar = tf.TensorSpec((), tf.float32)
    state = (image, image, image, scalar, image, tf.TensorSpec((4,), tf.float32))
    return image, targets, coefficients, state, tf.TensorSpec((4,), tf.float32)


def compiled(objective: Objective, jit_compile: bool = False) -> Compiled:
    """The network's cached `Compiled` for this objective's structure (built on first use)."""
    key = (objective.structure, jit_compile)
    cached = objective.network.compiled.get(key)
    if not isinstance(cached, Compiled):
        cached = objective.network.compiled[key] = Compiled(
            objective.network, objective.structure, jit_compile
        )
    return cached
