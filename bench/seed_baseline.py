"""The seed's execution strategy on our objective, for benchmarks only: anishathalye/neural-style's way.

A tf.compat.v1 graph and Session; the whole network built to relu5_4 with the kernels as graph constants;
both content layers computed even at weight 0; tf.compat.v1.train.AdamOptimizer; the loss evaluated only at
checkpoints and at the last step, the best of those kept. Same weights file, loss terms and weights as
`engine.stylize`, so its loss values compare number for number. Nothing in `engine/` may use compat.v1.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from engine.objective import layer_weights
from engine.params import CONTENT_LAYERS, STYLE_LAYERS, StyleParams
from engine.stylize import initial_image, prepare
from engine.vgg import VGG19
from engine.weights import LAYERS, VGGWeights

v1 = tf.compat.v1


def _net(weights: VGGWeights, image: tf.Tensor, pooling: str) -> dict[str, tf.Tensor]:
    """Every layer of VGG-19, as the seed's vgg.net_preloaded builds it."""
    net = {}
    x = image
    for name in LAYERS:
        if name.startswith("conv"):
            kernel = tf.constant(weights.kernels[name])
            x = tf.nn.bias_add(
                tf.nn.conv2d(x, kernel, strides=(1, 1, 1, 1), padding="SAME"), weights.biases[name]
            )
        elif name.startswith("relu"):
            x = tf.nn.relu(x)
        elif pooling == "avg":
            x = tf.nn.avg_pool2d(x, ksize=(1, 2, 2, 1), strides=(1, 2, 2, 1), padding="SAME")
        else:
            x = tf.nn.max_pool2d(x, ksize=(1, 2, 2, 1), strides=(1, 2, 2, 1), padding="SAME")
        net[name] = x
    return net


def _features(
    weights: VGGWeights, batch: np.ndarray, layers: Sequence[str], pooling: str
) -> list[np.ndarray]:
    """Target features in a throwaway graph and session, as the seed computes them."""
    with tf.Graph().as_default(), v1.Session() as sess:
        image = v1.placeholder(tf.float32, shape=batch.shape)
        net = _net(weights, image, pooling)
        return list(sess.run([net[layer] for layer in layers], feed_dict={image: batch}))


@dataclass(frozen=True)
class Checkpoint:
    iteration: int
    seconds: float  # since the start of the optimisation loop
    loss: float


class SeedAdam:
    """The graph, session and Adam train step for one content/style pair at the size `params` gives."""

    def __init__(
        self, weights: VGGWeights, content: np.ndarray, styles: Sequence[np.ndarray], params: StyleParams
    ) -> None:
        network = VGG19(weights)  # only for preprocessing and the start image: the same as ours
        content, styles = prepare(content, styles, params)
        self.network = network
        self.shape = content.shape[:2]
        content_pre = network.preprocess(content)
        content_feats = _features(weights, content_pre, CONTENT_LAYERS, params.pooling)
        _, style_layer_w, blend = layer_weights(params, len(styles))
        style_grams = []
        for style in styles:
            feats = _features(weights, network.preprocess(style), STYLE_LAYERS, params.pooling)
            style_grams.append(
                [f.reshape(-1, f.shape[-1]).T @ f.reshape(-1, f.shape[-1]) / f.size for f in feats]
            )
        content_blend = {"relu4_2": params.content_weight_blend, "relu5_2": 1.0 - params.content_weight_blend}

        self.graph = tf.Graph()
        with self.graph.as_default():
            self.image = v1.Variable(initial_image(network, content, params))
            net = _net(weights, self.image, params.pooling)
            content_loss = tf.constant(0.0)
            for layer, target in zip(CONTENT_LAYERS, content_feats, strict=True):
                content_loss += (
                    content_blend[layer]
                    * params.content_weight
                    * 2
                    * tf.nn.l2_loss(net[layer] - target)
                    / target.size
                )
            style_loss = tf.constant(0.0)
            for b, grams in zip(blend, style_grams, strict=True):
                per_style = tf.constant(0.0)
                for layer, target in zip(STYLE_LAYERS, grams, strict=True):
                    feats = net[layer]
                    number = feats.shape[3]
                    flat = tf.reshape(feats, (-1, number))
                    size = int(np.prod(feats.shape[1:]))
                    ours = tf.matmul(tf.transpose(flat), flat) / size
                    per_style += (
                        style_layer_w.get(layer, 0.0) * 2 * tf.nn.l2_loss(ours - target) / target.size
                    )
                style_loss += params.style_weight * b * per_style
            dy = self.image[:, 1:, :, :] - self.image[:, :-1, :, :]
            dx = self.image[:, :, 1:, :] - self.image[:, :, :-1, :]
            dy_size = int(np.prod(dy.shape[1:]))
            dx_size = int(np.prod(dx.shape[1:]))
            tv_loss = params.tv_weight * 2 * (tf.nn.l2_loss(dy) / dy_size + tf.nn.l2_loss(dx) / dx_size)
            self.loss = content_loss + style_loss + tv_loss
            optimizer = v1.train.AdamOptimizer(
                params.learning_rate, params.beta1, params.beta2, params.epsilon
            )
            self.train_step = optimizer.minimize(self.loss)
            self.session = v1.Session(graph=self.graph)
            self.session.run(v1.global_variables_initializer())

    def step(self) -> None:
        self.session.run(self.train_step)

    def loss_value(self) -> float:
        return float(self.session.run(self.loss))

    def image_value(self) -> np.ndarray:
        """(H, W, 3) RGB 0..255, clipped."""
        return np.clip(self.network.unprocess(self.session.run(self.image)), 0.0, 255.0)

    def run(
        self,
        iterations: int,
        checkpoint_every: int,
        on_checkpoint: Callable[[Checkpoint], None] | None = None,
    ) -> tuple[np.ndarray, float]:
        """The seed's loop: a train step per iteration, the loss only at checkpoints; best image and loss."""
        best_loss, best_image = np.inf, None
        start = time.perf_counter()
        for i in range(iterations):
            self.step()
            last = i == iterations - 1
            if last or (checkpoint_every and i % checkpoint_every == 0):
                loss = self.loss_value()
                if loss < best_loss:
                    best_loss, best_image = loss, self.image_value()
                if on_checkpoint is not None:
                    on_checkpoint(Checkpoint(i + 1, time.perf_counter() - start, loss))
        assert best_image is not None
        return best_image, best_loss

    def close(self) -> None:
        self.session.close()
