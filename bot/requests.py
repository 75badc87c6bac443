"""A picture's request: built once from the chat's choices; the one place the engine's settings come from."""

from __future__ import annotations

from engine.multiscale import levels, schedule
from engine.params import Precision, StyleParams
from storage import REFERENCE_SIZE, JobRequest, Options, Settings

# Pixels of mirrored frame optimised around each picture and cropped off: no dark, ragged edges.
MARGIN = 16

# The brush option (storage's BRUSHES) as the engine's style scale: the style image is resized to
# scale × the painting's width before its Gram matrices are taken, so a larger scale spreads the style's
# patterns over more of the painting, i.e. bigger strokes; "medium" is the style at the painting's width.
# The engine caps a style at 4 × scale² × the content's area (engine/inputs.py), so "large" costs at most
# 1.6² ≈ 2.6 times the style's features at medium, computed once per job.
BRUSH_SCALES = {"small": 0.6, "medium": 1.0, "large": 1.6}


def chosen_size(options: Options, settings: Settings, default_size: int) -> int:
    """The long side a chat's next painting gets: its choice, else the bot's default, at most the max."""
    return min(options.output_size or default_size, settings.max_image_size)


def new_request(
    options: Options,
    settings: Settings,
    default_size: int,
    optimizer: str,
    fast_available: bool,
    adain_start: bool,
) -> JobRequest:
    """What the next picture of a chat will be, from its options and the bot's current settings.

    `default_size`: the size of a painting whose chat chose none; `fast_available`: the preview worker
    is there (fast mode needs it); `adain_start`: the workers hold the AdaIN decoder, whose image the
    optimisation starts from because it converges sooner.
    """
    size = chosen_size(options, settings, default_size)
    return JobRequest(
        iterations=settings.iterations,
        max_size=size,
        optimizer=optimizer,
        initial="adain" if adain_start else "content",
        margin=MARGIN,
        preserve_colors=options.preserve_colors,
        style_strength=options.style_strength,
        fast=options.fast and fast_available,
        brush=options.brush,
    )


def work(request: JobRequest, photo_side: int) -> float | None:
    """A job's cost in iterations at 512 px, for wait estimates: a big painting runs coarse to fine, so
    most of its iterations cost less than its full size (None for a fast job: its lane counts jobs).

    `photo_side` is the content photo's long side: a photo smaller than the size asked is not enlarged.
    """
    if request.fast:
        return None
    side = min(request.max_size, photo_side)
    base = StyleParams.multiscale_base
    total = 0.0
    for index, (scale, iterations) in enumerate(schedule(side, request.iterations, base)):
        # A scale above the first also paints the style on the picture shrunk to its coarser levels.
        shrunk = levels(scale, base) if index else []
        total += iterations * sum((s / REFERENCE_SIZE) ** 2 for s in (scale, *shrunk))
    return total


def style_params(request: JobRequest, precision: Precision = "auto") -> StyleParams:
    """The engine's parameters for a request: its defaults, with what the request chose and the
    operator's number format (ENGINE_PRECISION; `auto` is decided by each worker's hardware)."""
    defaults = StyleParams(precision=precision)
    return defaults.with_overrides(
        iterations=request.iterations,
        max_size=request.max_size,
        optimizer=request.optimizer,
        initial=request.initial,
        margin=request.margin,
        preserve_colors=request.preserve_colors,
        style_weight=defaults.style_weight * request.style_strength,
        style_scales=(BRUSH_SCALES[request.brush],),  # a bot job has one style image
    )


def preview_alpha(request: JobRequest) -> float:
    """AdaIN's style strength (0..1) for the request's preview: weak styles blend in part of the photo."""
    return min(1.0, 0.5 + 0.5 * request.style_strength)
