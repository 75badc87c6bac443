"""The Gatys et al. optimisation: content + style + total-variation loss on VGG-19 features.

The objective is the seed's (anishathalye/neural-style's stylize.py) term for term, so loss values compare
number for number. Adam runs as the seed's, several compiled steps per call; L-BFGS-B (engine.lbfgs) takes
loss and gradient from one compiled function; either can run coarse to fine (engine.multiscale).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from engine.images import fit_long_side, preserve_colors, resize
from engine.lbfgs import lbfgs
from engine.multiscale import schedule
from engine.params import STYLE_LAYERS, Losses, StyleParams
from engine.vgg import VGG19, gram


class Cancelled(Exception):
    """The caller asked to stop; raised out of the optimisation between two iterations."""


@dataclass(frozen=True)
class Progress:
    """One finished iteration; `image` (H, W, 3) float32 RGB 0..255 is set on previews and the last."""

    iteration: int  # 1-based count of finished iterations
    total: int
    losses: Losses  # Adam: of the image the step started from; L-BFGS: of the point it evaluated
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


@dataclass(frozen=True)
class Structure:
    """What a compiled function depends on besides tensor shapes: the layers it reads and the pooling."""

    pooling: str
    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    styles: int


# Content targets (one (1, h, w, c) per content layer), and per style image one (c, c) Gram per style layer.
Targets = tuple[tuple[tf.Tensor, ...], tuple[tuple[tf.Tensor, ...], ...]]
# Each term's weight: (content layers,), (styles, style layers) and the TV weight, all float32.
Coefficients = tuple[tf.Tensor, tf.Tensor, tf.Tensor]


class Objective:
    """content + style + TV loss of a preprocessed (1, H, W, 3) image, with fixed targets.

    Targets and weights are tensors handed to the compiled functions as arguments, so one trace serves
    every job with the same `Structure` (see `compiled`).
    """

    def __init__(
        self, network: VGG19, content: np.ndarray, styles: Sequence[np.ndarray], params: StyleParams
    ) -> None:
        content_weights, style_weights, blend = layer_weights(params, len(styles))
        self.network = network
        self.structure = Structure(params.pooling, tuple(content_weights), tuple(style_weights), len(styles))
        feats = network.features(tf.constant(network.preprocess(content)), content_weights, params.pooling)
        grams = []
        for style in styles:
            sfeats = network.features(tf.constant(network.preprocess(style)), style_weights, params.pooling)
            grams.append(tuple(gram(sfeats[layer]) for layer in style_weights))
        self.targets: Targets = (tuple(feats[layer] for layer in content_weights), tuple(grams))
        self.coefficients: Coefficients = (
            tf.constant([params.content_weight * w for w in content_weights.values()], tf.float32),
            tf.constant(
                [[params.style_weight * b * w for w in style_weights.values()] for b in blend], tf.float32
            ),
            tf.constant(params.tv_weight, tf.float32),
        )

    def __call__(self, image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(content, style, tv) losses, each already multiplied by its weight."""
        return objective_parts(self.network, self.structure, image, self.targets, self.coefficients)


def objective_parts(
    network: VGG19, structure: Structure, image: tf.Tensor, targets: Targets, coefficients: Coefficients
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The seed's three weighted losses; only the layers up to the deepest one used are computed."""
    content_targets, style_targets = targets
    content_coef, style_coef, tv_coef = coefficients
    layers = set(structure.content_layers) | set(structure.style_layers)
    feats = network.features(image, layers, structure.pooling)
    content = tf.constant(0.0)
    for i, (layer, target) in enumerate(zip(structure.content_layers, content_targets, strict=True)):
        content += content_coef[i] * tf.reduce_sum(tf.square(feats[layer] - target)) / _size(target)
    grams = [gram(feats[layer]) for layer in structure.style_layers]
    style = tf.constant(0.0)
    for s, style_grams in enumerate(style_targets):
        for j, (ours, target) in enumerate(zip(grams, style_grams, strict=True)):
            style += style_coef[s, j] * tf.reduce_sum(tf.square(ours - target)) / _size(target)
    return content, style, tv_coef * total_variation(image)


def total_variation(image: tf.Tensor) -> tf.Tensor:
    """Mean squared difference of vertical plus horizontal neighbours (the seed's 2·l2_loss / size)."""
    dy = image[:, 1:, :, :] - image[:, :-1, :, :]
    dx = image[:, :, 1:, :] - image[:, :, :-1, :]
    return tf.reduce_sum(tf.square(dy)) / _size(dy) + tf.reduce_sum(tf.square(dx)) / _size(dx)


def _size(x: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.size(x), tf.float32)


# Adam's state between calls: image, m, v, t, best image so far, its (content, style, tv, total).
AdamState = tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]


class Compiled:
    """The compiled functions of one `Structure` on one network, traced once and reused by every job.

    Height and width are left unknown in the input signatures, so one trace serves every image size and a
    long-lived worker never retraces (bench/bench_speed.py: no slower than a trace for one fixed size).
    """

    def __init__(self, network: VGG19, structure: Structure, jit_compile: bool = False) -> None:
        def parts(image: tf.Tensor, targets: Targets, coefficients: Coefficients) -> tf.Tensor:
            content, style, tv = objective_parts(network, structure, image, targets, coefficients)
            return tf.stack([content, style, tv, content + style + tv])  # (4,)

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
        # A while loop costs about 10 % per step on this CPU (bench/bench_speed.py), so one step is its own
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
    targets = (
        tuple(
            tf.TensorSpec((1, None, None, channels(layer)), tf.float32) for layer in structure.content_layers
        ),
        tuple(
            tuple(tf.TensorSpec((channels(layer),) * 2, tf.float32) for layer in structure.style_layers)
            for _ in range(structure.styles)
        ),
    )
    coefficients = (
        tf.TensorSpec((len(structure.content_layers),), tf.float32),
        tf.TensorSpec((structure.styles, len(structure.style_layers)), tf.float32),
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


def initial_image(
    network: VGG19, content: np.ndarray, params: StyleParams, start: np.ndarray | None = None
) -> np.ndarray:
    """The preprocessed (1, H, W, 3) start image: content (or `start`, resized to the content's size)
    blended with N(0, 0.256²) noise as the seed does."""
    rng = np.random.default_rng(params.seed)
    noise = rng.standard_normal((1, *content.shape)).astype(np.float32) * 0.256
    if params.initial == "noise":
        return noise
    base = content
    if params.initial == "adain":
        if start is None:
            raise ValueError("initial='adain' needs the AdaIN image as `start` (see initial_from_adain)")
        base = resize(start, content.shape[:2])
    blend = params.initial_noiseblend
    return (network.preprocess(base) * (1.0 - blend) + noise * blend).astype(np.float32)


# L-BFGS starts after this many Adam steps on the first scale (see `_lbfgs`).
LBFGS_WARMUP = 2
# On a GPU, Adam runs this many steps per call at most: enough to keep it busy between host round trips.
MAX_STEPS_PER_CALL = 50
# There, a call lasts about this long, so progress and cancellation stay this responsive.
SECONDS_PER_CALL = 1.0

# (evaluation within the scale, its losses, preview image or None) events and the scale's best at the end.
Steps = Generator[tuple[int, Losses, np.ndarray | None], None, tuple[np.ndarray, Losses]]


def iterate(
    network: VGG19,
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    params: StyleParams,
    should_cancel: Callable[[], bool] | None = None,
    steps_per_call: int | None = None,
    start: np.ndarray | None = None,
) -> Iterator[Progress]:
    """Run the optimisation, yielding after every iteration; the last `Progress` carries the result image.

    `content` and `styles` are (H, W, 3) RGB arrays at their original size; they are scaled here, per scale
    when `params.multiscale` is on. `should_cancel` is checked before every iteration and makes this raise
    `Cancelled`. `steps_per_call` fixes how many Adam steps run per compiled call (None: one on a CPU,
    about a second's worth on a GPU); it does not change the result. `start` is the (H, W, 3) image an
    `initial="adain"` run begins from.
    """
    target, sized_styles = prepare(content, styles, params)
    side = max(target.shape[:2])
    plan = schedule(side, params.iterations) if params.multiscale else [(side, params.iterations)]
    total = params.iterations
    cancel = should_cancel or (lambda: False)
    offset = 0
    batch: np.ndarray | None = None
    losses: Losses | None = None
    for index, (long_side, budget) in enumerate(plan):
        if index == len(plan) - 1:
            scale_content, scale_styles = target, sized_styles
        else:
            scale_content, scale_styles = prepare(content, styles, params.with_overrides(max_size=long_side))
        objective = Objective(network, scale_content, scale_styles, params)
        if batch is None:
            first = initial_image(network, scale_content, params, start)
        else:  # coarse to fine: the previous scale's best image, resized in pixel space
            pixels = np.clip(network.unprocess(batch), 0.0, 255.0)
            first = network.preprocess(resize(pixels, scale_content.shape[:2]))
        wanted = range(offset + 1, min(offset + budget, total - 1) + 1)
        previews = frozenset(
            g - offset for g in wanted if params.preview_every and g % params.preview_every == 0
        )
        fn = compiled(objective)
        steps: Steps
        if params.optimizer == "lbfgs":
            warmup = LBFGS_WARMUP if index == 0 else 0  # a finer scale starts from a stylised image
            steps = _lbfgs(fn, objective, first, budget, warmup, params, previews, cancel)
        else:
            steps = _adam(fn, objective, first, budget, params, previews, cancel, steps_per_call)
        batch, losses = yield from _report(steps, offset, total, scale_content, params, network, cancel)
        offset += budget
    assert batch is not None
    assert losses is not None
    yield Progress(total, total, losses, _finish(network, batch, target, params))


def _report(
    steps: Steps,
    offset: int,
    total: int,
    content: np.ndarray,
    params: StyleParams,
    network: VGG19,
    cancel: Callable[[], bool],
) -> Generator[Progress, None, tuple[np.ndarray, Losses]]:
    """Relay one scale's events as `Progress` numbered across all scales; return the scale's best."""
    try:
        while True:
            try:
                index, losses, image = next(steps)
            except StopIteration as stop:
                if cancel():  # L-BFGS ends early rather than raise when asked to stop
                    raise Cancelled from None
                return stop.value
            if cancel():
                raise Cancelled
            if offset + index < total:
                preview = _finish(network, image, content, params) if image is not None else None
                yield Progress(offset + index, total, losses, preview)
    finally:
        steps.close()


def _numpy_loss_and_grad(
    fn: Compiled, objective: Objective
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """What scipy wants: (4,) losses and the gradient as float64 from a float32 image, one compiled call."""

    def loss_and_grad(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values, grad = fn.loss_and_grad(tf.constant(image), objective.targets, objective.coefficients)
        return values.numpy().astype(np.float64), grad.numpy().astype(np.float64)

    return loss_and_grad


def _lbfgs(
    fn: Compiled,
    objective: Objective,
    start: np.ndarray,
    evaluations: int,
    warmup: int,
    params: StyleParams,
    previews: frozenset[int],
    cancel: Callable[[], bool],
) -> Steps:
    """`warmup` of the seed's Adam steps, then L-BFGS-B bounded to valid pixels for the rest of the budget.

    From the content image, L-BFGS-B alone can creep for dozens of evaluations at 512 px: its line
    search stops where the first pixel reaches the bounds. Two Adam steps (each moves every pixel by
    about the learning rate) get it clear; see BENCHMARKS.md.
    """
    warmup = min(warmup, evaluations)
    best: tuple[np.ndarray, Losses] | None = None
    image = start
    if warmup:
        early = frozenset(p for p in previews if p <= warmup)
        best = yield from _adam(fn, objective, start, warmup, params, early, cancel, None)
        image = best[0]
    if evaluations > warmup:
        network = objective.network
        low, high = -network.mean_pixel, 255.0 - network.mean_pixel
        later = frozenset(p - warmup for p in previews if p > warmup)
        steps = lbfgs(
            _numpy_loss_and_grad(fn, objective), image, low, high, evaluations - warmup, later, cancel
        )
        try:
            while True:
                try:
                    index, losses, preview = next(steps)
                except StopIteration as stop:
                    found: tuple[np.ndarray, Losses] = stop.value
                    break
                yield warmup + index, losses, preview
        finally:
            steps.close()
        if best is None or found[1].total <= best[1].total:
            best = found
    assert best is not None
    return best


def _finish(network: VGG19, batch: np.ndarray, content: np.ndarray, params: StyleParams) -> np.ndarray:
    out = np.clip(network.unprocess(batch), 0.0, 255.0)
    return preserve_colors(content, out) if params.preserve_colors else out


def _adam(
    fn: Compiled,
    objective: Objective,
    start: np.ndarray,
    iterations: int,
    params: StyleParams,
    previews: frozenset[int],
    cancel: Callable[[], bool],
    steps_per_call: int | None,
) -> Steps:
    """Adam as the seed runs it, several steps per compiled call; previews end a call so they are exact."""
    image = tf.constant(start)
    zeros = tf.zeros_like(image)
    state: AdamState = (image, zeros, zeros, tf.constant(0.0), image, tf.fill((4,), np.inf))
    hyper = tf.constant([params.learning_rate, params.beta1, params.beta2, params.epsilon], tf.float32)
    per_call = steps_per_call or 1
    adaptive = steps_per_call is None and bool(tf.config.list_logical_devices("GPU"))
    done = 0
    while done < iterations:
        if cancel():
            raise Cancelled
        n = min(per_call, iterations - done, *(p - done for p in previews if p > done))
        began = time.perf_counter()
        if n == 1:
            state, values = fn.adam_step(state, objective.targets, objective.coefficients, hyper)
            rows = values.numpy()[np.newaxis]
        else:
            state, history = fn.adam_steps(
                state, tf.constant(n), objective.targets, objective.coefficients, hyper
            )
            rows = history.numpy()  # (n, 4): the losses of the images the n steps started from
        if adaptive and done > 0:  # the first call also traced: not a fair timing
            seconds = time.perf_counter() - began
            per_call = max(1, min(MAX_STEPS_PER_CALL, int(n * SECONDS_PER_CALL / max(seconds, 1e-6))))
        for row in rows:
            done += 1
            yield done, Losses(*(float(x) for x in row)), state[0].numpy() if done in previews else None
    # Each step scores the image it started from; score the final image too and keep the best.
    final = fn.parts(state[0], objective.targets, objective.coefficients).numpy()
    best = state[5].numpy()
    if not np.isfinite(best[3]) or final[3] <= best[3]:
        return state[0].numpy(), Losses(*(float(x) for x in final))
    return state[4].numpy(), Losses(*(float(x) for x in best))


def stylize(
    network: VGG19,
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    params: StyleParams,
    progress: Callable[[Progress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    start: np.ndarray | None = None,
) -> Result:
    """Run `iterate` to the end, calling `progress` after every iteration; return the result."""
    began = time.perf_counter()
    last: Progress | None = None
    for last in iterate(network, content, styles, params, should_cancel, start=start):
        if progress is not None:
            progress(last)
    assert last is not None
    assert last.image is not None
    return Result(last.image, last.losses, params.iterations, time.perf_counter() - began)
