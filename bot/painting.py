"""What a painting will be: the chat's choices made into a job's request, and the request into the
engine's parameters (the one place those come from)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.params import Precision, StyleLoss, StyleParams
from storage import JobRequest, Options, Settings

# Pixels of mirrored frame optimised around each picture and cropped off: no dark, ragged edges.
MARGIN = 16

# The brush option (storage's BRUSHES) as the engine's style scale: the style image is resized to
# scale × the painting's width before its Gram matrices are taken, so a larger scale spreads the style's
# patterns over more of the painting, i.e. bigger strokes; "medium" is the style at the painting's width.
# The engine caps a style at 4 × scale² × the content's area (engine/inputs.py), so "large" costs at most
# 1.6² ≈ 2.6 times the style's features at medium, computed once per job.
BRUSH_SCALES = {"small": 0.6, "medium": 1.0, "large": 1.6}


@dataclass(frozen=True)
class EngineFeatures:
    """What the engine the bot started with can do, fixed for the bot's run."""

    previews: bool = False  # a preview worker with the AdaIN decoder: instant previews and fast mode
    adain_start: bool = False  # the painters hold the decoder: a painting starts from its AdaIN image


def chosen_size(options: Options, settings: Settings, default_size: int) -> int:
    """The long side a chat's next painting gets: its choice, else the bot's default, at most the max."""
    return min(options.output_size or default_size, settings.max_image_size)


def new_request(
    options: Options,
    settings: Settings,
    default_size: int,
    optimizer: str,
    features: EngineFeatures,
) -> JobRequest:
    """What the next picture of a chat will be, from its options and the bot's current settings.

    `default_size`: the size of a painting whose chat chose none. Fast mode needs the preview worker;
    a painting starts from the AdaIN image where there is one, because it converges sooner.
    """
    size = chosen_size(options, settings, default_size)
    return JobRequest(
        iterations=settings.iterations,
        max_size=size,
        optimizer=optimizer,
        initial="adain" if features.adain_start else "content",
        margin=MARGIN,
        preserve_colors=options.preserve_colors,
        style_strength=options.style_strength,
        fast=options.fast and features.previews,
        brush=options.brush,
    )


@dataclass(frozen=True)
class EngineChoices:
    """How every painting is computed, as the operator set it: the number format (ENGINE_PRECISION;
    `auto` is decided by each worker's hardware), the style loss (STYLE_LOSS, and STYLE_GRAM_LAYERS for
    the sliced one) and the iterate averaging (AVERAGE_DECAY). Read when a job runs, so a restart with new
    settings paints queued jobs with them."""

    precision: Precision = "auto"
    style_loss: StyleLoss = "sliced"
    gram_layers: int = StyleParams.gram_layers
    average_decay: float = 0.0


def style_params(request: JobRequest, choices: EngineChoices = EngineChoices()) -> StyleParams:
    """The engine's parameters for a request: its defaults, with what the request and the operator chose."""
    defaults = StyleParams(
        precision=choices.precision,
        style_loss=choices.style_loss,
        gram_layers=choices.gram_layers,
        average_decay=choices.average_decay,
    )
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
