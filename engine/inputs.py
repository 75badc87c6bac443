"""The sizes a stylisation's images are used at, and loading them straight to those sizes.

The content is scaled down to `max_size` on its long side; each style to scale × the content's width (as
anishathalye/neural-style's CLI), with its area capped so a tall style on a wide photo cannot dwarf the
content.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.images import inspect_image, load_image
from engine.params import StyleParams

# A style's area is capped at this many times the content's area × its scale². At the content's width a
# style of the content's shape has exactly the content's area × scale², so the cap only bites on a style
# more than 4× taller, relative to its width, than the content (a 1:10 style on a 10:1 photo would be
# 100×): a portrait on a landscape photo, up to 1:2 on 2:1, keeps the size anishathalye/neural-style gives
# it. Its Grams then cost at most four times the content's forward pass, and are taken once per scale.
STYLE_AREA_RATIO = 4.0


def style_size(style: tuple[int, ...], content: tuple[int, ...], scale: float = 1.0) -> tuple[int, int]:
    """(height, width) for a style of shape `style` (H, W, …) used with a content of shape `content`.

    `scale` × the content's width, shrunk with its aspect kept where that would exceed the area cap.
    """
    factor = scale * content[1] / style[1]
    cap = STYLE_AREA_RATIO * scale**2 * content[0] * content[1]
    area = style[0] * style[1] * factor**2
    if area <= cap:
        return max(1, round(style[0] * factor)), max(1, round(style[1] * factor))
    factor *= math.sqrt(cap / area)
    return max(1, math.floor(style[0] * factor)), max(1, math.floor(style[1] * factor))


def load_inputs(
    content: Path | bytes,
    styles: Sequence[Path | bytes],
    params: StyleParams,
    content_name: str | None = None,
    style_name: str | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The content and styles as (H, W, 3) float32, decoded no larger than the run will use them.

    The content comes out as `fit_long_side(·, params.max_size)` gives it (the run's margin is mirrored
    from it later); each style at about its `style_size` for that content, never enlarged here. Errors
    name the images `content_name` and `style_name` (default: their paths).
    """
    image = load_image(content, name=content_name, max_side=params.max_size)
    return image, load_styles(styles, image.shape, params, style_name)


def load_styles(
    styles: Sequence[Path | bytes],
    content: tuple[int, ...],
    params: StyleParams,
    style_name: str | None = None,
) -> list[np.ndarray]:
    """The styles as (H, W, 3) float32 for a content of shape `content` (H, W, …), as `load_inputs`
    decodes them (a clip's frames are the content)."""
    scales = params.style_scales or (1.0,) * len(styles)
    if len(scales) != len(styles):
        raise ValueError(f"{len(scales)} style scales for {len(styles)} style images")
    loaded = []
    for style, scale in zip(styles, scales, strict=True):
        info = inspect_image(style, style_name, verify=False)
        height, width = style_size((info.height, info.width), content, scale)
        loaded.append(load_image(style, name=style_name, max_side=max(height, width)))
    return loaded
