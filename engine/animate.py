"""Painting a clip frame by frame, each frame steadied by the painting of the one before it.

Frames painted one by one flicker: each optimisation (or feed-forward pass) settles on its own strokes.
Both modes carry the previous painted frame to the new one along the source's optical flow (engine.flow):

- painted (the optimisation): the first frame is painted as a picture; every later one starts from the
  previous painted frame warped to it (its unreliable pixels from the frame's own start) and runs
  `frame_iterations` iterations of the objective plus Ruder et al. 2016's temporal term, which keeps the
  reliable pixels near that warped frame. The style's Grams are taken once for the later frames, and their
  compiled functions traced once (one `Structure`, any size) and reused by every frame.
- fast (AdaIN): each frame through the feed-forward network, then blended with the previous output warped
  to it where the flow is reliable; occluded pixels keep the frame's own painting.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

import numpy as np

from engine.compiled import compiled
from engine.descent import Cancelled, adam, lbfgs_after_adam
from engine.flow import Motion, motion
from engine.images import fit_long_side, preserve_colors, resize
from engine.multiscale import schedule
from engine.objective import Grams, Objective
from engine.params import Losses, StyleParams
from engine.stopping import Plateau, stop_tolerance
from engine.stylize import crop, iterate, pad, size_styles
from engine.vgg import VGG19

# Fast mode: the share of the previous output (warped) in each reliable pixel of the next. Chosen by
# measurement (bench/notes/animations.md): flicker falls with it, and ghosting (drift from each
# frame's own painting, which trails behind moving edges) grows.
FAST_BLEND = 0.6

# (H, W, 3) RGB 0..255 frame → (H, W, 3) RGB 0..255 image: a frame's own start (the AdaIN image) or painting.
Painter = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class FrameStep:
    """One step of a clip: an iteration of a frame (painted) or a whole frame (fast)."""

    frame: int  # 1-based, the frame being painted
    frames: int
    iteration: int  # over the whole clip; the last step has iteration == total
    total: int
    losses: Losses | None = None  # the optimisation's (None in fast mode and for a given first frame)
    image: np.ndarray | None = None  # (H, W, 3) float32 RGB 0..255, the finished frame, on its last step


def first_budget(side: int, params: StyleParams) -> int:
    """Iterations the first frame gets at long side `side`, over its scales, as `iterate` counts them."""
    plan = schedule(side, params.iterations, params.multiscale_base) if params.multiscale else []
    return sum(budget for _, budget in plan) or params.iterations


def painted_total(side: int, frames: int, params: StyleParams) -> int:
    """The iterations of a painted clip of `frames` frames at long side `side`."""
    return first_budget(side, params) + (frames - 1) * params.frame_iterations


def paint(
    network: VGG19,
    frames: Iterable[np.ndarray],
    count: int,
    styles: Sequence[np.ndarray],
    params: StyleParams,
    should_cancel: Callable[[], bool] | None = None,
    start: Painter | None = None,
    first: np.ndarray | None = None,
) -> Iterator[FrameStep]:
    """Paint up to `count` frames (H, W, 3) RGB 0..255, each scaled to `params.max_size`, yielding after
    every iteration; a frame's last step carries its painting. `start` gives a frame's own start (the
    AdaIN image of `initial="adain"`): the first frame's, and the occluded pixels' of the later ones
    (else the frame itself). `first` is the first frame's painting when the caller already has it (a
    clip continued, settings compared on one clip): it is not painted again and counts no iterations.
    Raises `Cancelled` when `should_cancel` says so, between any two iterations."""
    cancel = should_cancel or (lambda: False)
    total = 0
    done = 0
    clip = _Clip(network, params, styles, cancel)
    painted = 0
    losses: Losses | None = None
    for index, raw in enumerate(islice(frames, count)):
        if cancel():
            raise Cancelled
        frame = fit_long_side(raw, params.max_size)
        if index == 0:
            done = 0 if first is not None else first_budget(max(frame.shape[:2]), params)
            total = done + (count - 1) * params.frame_iterations
            if first is None:
                image, losses = yield from clip.first(frame, start, count, total)
            else:
                image, losses = resize(first, frame.shape[:2]), None
        else:
            where = (index + 1, count, done, total)
            image, losses = yield from clip.later(frame, motion(clip.source, frame), start, where)
            done += params.frame_iterations
        clip.source, clip.painting = frame, image
        painted = index + 1
        yield FrameStep(painted, count, done, total, losses, image)
    if painted == 0:
        raise ValueError("the clip has no frames")
    if done < total:  # the clip held fewer frames than counted: the bar still ends at 100 %
        yield FrameStep(painted, count, total, total, losses)


class _Clip:
    """What a painted clip keeps between frames: the last source frame and its painting, and the style's
    targets for the later frames."""

    def __init__(
        self, network: VGG19, params: StyleParams, styles: Sequence[np.ndarray], cancel: Callable[[], bool]
    ) -> None:
        self.network = network
        self.params = params
        self.styles = styles
        self.cancel = cancel
        self.source = np.zeros((0, 0, 3), np.float32)  # (H, W, 3) the previous source frame
        self.painting = self.source  # its painting
        self.grams: Grams | None = None

    def first(
        self, frame: np.ndarray, start: Painter | None, count: int, total: int
    ) -> Generator[FrameStep, None, tuple[np.ndarray, Losses]]:
        """The first frame, painted as a picture (coarse to fine if it is big)."""
        begin = None if start is None else start(frame)
        for step in iterate(self.network, frame, self.styles, self.params, self.cancel, start=begin):
            if step.iteration < step.total:
                yield FrameStep(1, count, step.iteration, total, step.losses)
        assert step.image is not None
        return step.image, step.losses

    def later(
        self, frame: np.ndarray, move: Motion, start: Painter | None, where: tuple[int, int, int, int]
    ) -> Generator[FrameStep, None, tuple[np.ndarray, Losses]]:
        """A later frame: from the previous painting warped to it, with the temporal term; `where` is
        (frame, frames, iterations before this frame, total)."""
        network, params = self.network, self.params
        number, count, offset, total = where
        warped = move.carry(self.painting)  # (H, W, 3)
        own = frame if start is None else resize(start(frame), frame.shape[:2])
        reliable = move.mask[..., np.newaxis]  # (H, W, 1)
        begin = reliable * warped + (1.0 - reliable) * own
        margin = max(0, min(params.margin, min(frame.shape[:2]) - 1))
        temporal = (pad(warped, margin), pad(reliable, margin)[..., 0])
        canvas = pad(frame, margin)
        sized = size_styles(self.styles, frame.shape, params)
        single = params.with_overrides(multiscale_levels=0.0)  # one scale: no coarser levels
        objective = Objective(network, canvas, sized, single, grams=self.grams, temporal=temporal)
        self.grams = objective.targets[1]
        fn = compiled(objective)
        first = network.preprocess(pad(begin, margin))
        plateau = Plateau(stop_tolerance(params))
        budget = params.frame_iterations
        none: frozenset[int] = frozenset()
        if params.optimizer == "lbfgs":  # from a painted image: no Adam steps first
            steps = lbfgs_after_adam(fn, objective, first, budget, 0, params, none, self.cancel, plateau)
        else:
            steps = adam(fn, objective, first, budget, params, none, self.cancel, None, plateau)
        try:
            while True:
                try:
                    index, losses, _ = next(steps)
                except StopIteration as stop:
                    if self.cancel():  # L-BFGS ends early rather than raise when asked to stop
                        raise Cancelled from None
                    batch, best = stop.value
                    break
                if self.cancel():
                    raise Cancelled
                plateau.add(losses.total)
                if index < budget:
                    yield FrameStep(number, count, offset + index, total, losses)
        finally:
            steps.close()
        image = np.clip(network.unprocess(crop(batch, margin)), 0.0, 255.0)
        return (preserve_colors(frame, image) if params.preserve_colors else image), best


def fast(
    frames: Iterable[np.ndarray],
    count: int,
    stylise: Painter,
    max_size: int,
    should_cancel: Callable[[], bool] | None = None,
    blend: float = FAST_BLEND,
) -> Iterator[FrameStep]:
    """Up to `count` frames, each scaled to `max_size` and painted by `stylise` (one feed-forward pass),
    blended with the previous output warped to it: out = m·(blend·warped + (1−blend)·own) + (1−m)·own,
    m the flow's reliability. One step per frame, carrying its image."""
    cancel = should_cancel or (lambda: False)
    source = output = np.zeros((0, 0, 3), np.float32)
    painted = 0
    for index, raw in enumerate(islice(frames, count)):
        if cancel():
            raise Cancelled
        frame = fit_long_side(raw, max_size)
        own = resize(stylise(frame), frame.shape[:2])
        if index and blend > 0.0:
            move = motion(source, frame)
            reliable = blend * move.mask[..., np.newaxis]  # (H, W, 1)
            own = reliable * move.carry(output) + (1.0 - reliable) * own
        source, output = frame, own.astype(np.float32)
        painted = index + 1
        yield FrameStep(painted, count, painted, count, image=output)
    if painted == 0:
        raise ValueError("the clip has no frames")
    if painted < count:
        yield FrameStep(painted, count, count, count)
