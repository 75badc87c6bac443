"""The Gatys et al. optimisation, as a generator of progress: Adam or L-BFGS on the objective of
anishathalye/neural-style.

The objective (engine.objective) is anishathalye/neural-style's term for term. Adam runs as it does
there, several compiled steps per call (engine.compiled); L-BFGS (engine.lbfgs, on the device) takes
loss and gradient from one compiled function (both: engine.descent); either can run coarse to fine
(engine.multiscale).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from engine.compiled import compiled
from engine.descent import LBFGS_WARMUP, Cancelled, Steps, adam, lbfgs_after_adam
from engine.images import fit_long_side, fitted_size, preserve_colors, resize
from engine.inputs import style_size
from engine.multiscale import levels, schedule
from engine.objective import LevelInput, Objective
from engine.params import Losses, StyleParams
from engine.stopping import Plateau, stop_tolerance
from engine.vgg import VGG19

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """One finished iteration; `image` (H, W, 3) float32 RGB 0..255 is set on previews and the last."""

    iteration: int  # 1-based count of finished iterations, over all scales
    total: int
    losses: Losses  # Adam: of the image the step started from; L-BFGS: of the point it evaluated
    image: np.ndarray | None = None
    scale: int = 1  # coarse to fine: which scale this iteration ran at, 1-based, of `scales`
    scales: int = 1
    side: int = 0  # the long side in pixels that scale optimises (0: not given)
    # Iterations that have run, over all scales: `iteration` less the budget of scales that stopped early
    # (StyleParams.stop_tolerance). The last Progress has iteration == total whenever the painting ends.
    ran: int = 0


@dataclass(frozen=True)
class Result:
    """The output of `stylize`."""

    image: np.ndarray  # (H, W, 3) float32 RGB 0..255: the lowest-loss image seen, or the average of the
    # iterates with StyleParams.average_decay
    losses: Losses  # of that image
    iterations: int  # that ran: fewer than the budget when the painting stopped early
    seconds: float


def prepare(
    content: np.ndarray, styles: Sequence[np.ndarray], params: StyleParams, enlarge: bool = True
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Scale the content to `max_size`, each style to scale × the content's width (as
    anishathalye/neural-style's CLI) with its area capped (`engine.inputs.style_size`); with `enlarge` off,
    no style beyond its own pixels."""
    if not styles:
        raise ValueError("at least one style image is needed")
    content = fit_long_side(content, params.max_size)
    return content, size_styles(styles, content.shape, params, enlarge)


def size_styles(
    styles: Sequence[np.ndarray], painting: tuple[int, ...], params: StyleParams, enlarge: bool = True
) -> list[np.ndarray]:
    """Each style scaled for a painting of shape `painting` (H, W, …), as `prepare` scales them."""
    scales = params.style_scales or (1.0,) * len(styles)
    if len(scales) != len(styles):
        raise ValueError(f"{len(scales)} style scales for {len(styles)} style images")
    sized = []
    for style, scale in zip(styles, scales, strict=True):
        height, width = style_size(style.shape, painting, scale)
        if not enlarge and height * width > style.shape[0] * style.shape[1]:
            sized.append(style)
        else:
            sized.append(resize(style, (height, width)))
    return sized


def initial_image(
    network: VGG19, content: np.ndarray, params: StyleParams, start: np.ndarray | None = None
) -> np.ndarray:
    """The preprocessed (1, H, W, 3) start image: content (or `start`, resized to the content's size)
    blended with N(0, 0.256²) noise as anishathalye/neural-style does."""
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
    target = fit_long_side(content, params.max_size)
    side = max(target.shape[:2])
    plan = schedule(side, params.iterations, params.multiscale_base) if params.multiscale else []
    plan = plan or [(side, params.iterations)]
    total = sum(budget for _, budget in plan)
    cancel = should_cancel or (lambda: False)
    tolerance = stop_tolerance(params)
    offset = 0
    ran = 0
    batch: np.ndarray | None = None
    losses: Losses | None = None
    margin = 0
    for index, (long_side, budget) in enumerate(plan):
        # A finer scale uses a style at most at its own pixels. Enlarged to the painting's width, as the base
        # scale's, it paints no finer: its mosaic comes out coarser, and the painting, shrunk, further from
        # the style (BENCHMARKS.md, "Big paintings").
        scale_params = params.with_overrides(max_size=long_side)
        scale_content, scale_styles = prepare(content, styles, scale_params, enlarge=index == 0)
        inner = scale_content.shape[:2]
        previous, margin = margin, _margin(params.margin * long_side / side, inner)
        canvas = pad(scale_content, margin)
        # Above the base, the style is matched on the image shrunk to the coarser scales too, so this scale's
        # strokes do not paint over theirs (engine.multiscale.levels); the base has none.
        coarser = coarser_levels(content, styles, params, long_side, canvas.shape) if index else []
        objective = Objective(network, canvas, scale_styles, params, coarser)
        if batch is None:
            begin = None if start is None else pad(resize(start, inner), margin)
            first = initial_image(network, canvas, params, begin)
        else:  # coarse to fine: the previous scale's best image, resized in pixel space
            pixels = np.clip(network.unprocess(crop(batch, previous)), 0.0, 255.0)
            first = network.preprocess(pad(resize(pixels, inner), margin))
        wanted = range(offset + 1, min(offset + budget, total - 1) + 1)
        previews = frozenset(
            g - offset for g in wanted if params.preview_every and g % params.preview_every == 0
        )
        fn = compiled(objective)
        # A scale that stops early leaves the rest of its budget unrun; the next one gets all of its own.
        plateau = Plateau(tolerance)
        steps: Steps
        if params.optimizer == "lbfgs":
            warmup = LBFGS_WARMUP if index == 0 else 0  # a finer scale starts from a stylised image
            steps = lbfgs_after_adam(fn, objective, first, budget, warmup, params, previews, cancel, plateau)
        else:
            steps = adam(fn, objective, first, budget, params, previews, cancel, steps_per_call, plateau)
        where = _Scale(index + 1, len(plan), long_side, ran)
        batch, losses = yield from _report(
            steps, offset, total, scale_content, margin, params, network, cancel, where, plateau
        )
        if plateau.count < budget:
            logger.debug("scale %d converged after %d of %d iterations", where.index, plateau.count, budget)
        offset += budget
        ran += plateau.count
    assert batch is not None
    assert losses is not None
    image = _finish(network, crop(batch, margin), target, params)
    yield Progress(total, total, losses, image, len(plan), len(plan), side, ran)


@dataclass(frozen=True)
class _Scale:
    index: int  # 1-based
    count: int
    side: int
    ran: int  # iterations run before this scale


def coarser_levels(
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    params: StyleParams,
    side: int,
    canvas: tuple[int, ...],
) -> list[LevelInput]:
    """A finer scale's coarser levels: the canvas's (height, width) shrunk from `side` to each level's long
    side, and the styles sized for a painting of that size as the base scale sizes them (enlarged if need
    be). None when their weight is 0."""
    if params.multiscale_levels == 0:
        return []
    out: list[LevelInput] = []
    for level in levels(side, params.multiscale_base):
        sized = size_styles(styles, fitted_size(content.shape, level), params)  # the photo itself not resized
        out.append(((round(canvas[0] * level / side), round(canvas[1] * level / side)), sized))
    return out


def _margin(pixels: float, shape: tuple[int, ...]) -> int:
    """A margin of about `pixels`, no wider than a reflection of the image allows."""
    return max(0, min(round(pixels), min(shape[:2]) - 1))


def pad(image: np.ndarray, margin: int) -> np.ndarray:
    """(H, W, 3) → (H + 2m, W + 2m, 3), the image mirrored into the margin on every side."""
    if margin == 0:
        return image
    return np.pad(image, ((margin, margin), (margin, margin), (0, 0)), mode="reflect")


def crop(batch: np.ndarray, margin: int) -> np.ndarray:
    """(1, H + 2m, W + 2m, 3) → (1, H, W, 3): the margin cut off again."""
    if margin == 0:
        return batch
    return batch[:, margin:-margin, margin:-margin, :]


def _report(
    steps: Steps,
    offset: int,
    total: int,
    content: np.ndarray,
    margin: int,
    params: StyleParams,
    network: VGG19,
    cancel: Callable[[], bool],
    where: _Scale,
    plateau: Plateau,
) -> Generator[Progress, None, tuple[np.ndarray, Losses]]:
    """Relay one scale's events as `Progress` numbered across all scales, feeding each to `plateau`;
    return the scale's best."""
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
            plateau.add(losses.total)
            if offset + index < total:
                preview = None if image is None else _finish(network, crop(image, margin), content, params)
                ran = where.ran + plateau.count
                yield Progress(
                    offset + index, total, losses, preview, where.index, where.count, where.side, ran
                )
    finally:
        steps.close()


def _finish(network: VGG19, batch: np.ndarray, content: np.ndarray, params: StyleParams) -> np.ndarray:
    out = np.clip(network.unprocess(batch), 0.0, 255.0)
    return preserve_colors(content, out) if params.preserve_colors else out


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
    return Result(last.image, last.losses, last.ran, time.perf_counter() - began)
