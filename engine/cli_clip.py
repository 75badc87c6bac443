"""`neural-style clip.mp4 style.jpg -o out.mp4`: paint a clip from the command line (engine.animate).

The clip is decoded and written one frame at a time, as H.264 MP4 without sound, at its painted frame
rate (engine.clips); the estimate is printed before the painting starts.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING

import numpy as np

from engine.clips import ClipError, ClipLimits, ClipWriter, frame_size, inspect_clip, read_frames
from engine.inputs import load_styles
from engine.params import StyleParams
from engine.weights import DecoderWeights, VGGWeights, WeightsError

if TYPE_CHECKING:
    from engine.animate import Painter
    from engine.vgg import VGG19

# From the command line a clip has no length limit; its sides are the engine's decoding limit.
CLI_LIMITS = ClipLimits(max_seconds=math.inf)


def paint_clip(
    args: argparse.Namespace, params: StyleParams, weights: VGGWeights, decoder: DecoderWeights | None
) -> int:
    """Paint `args.content` to `args.output` (.mp4): `--fast` AdaIN per frame, else the optimisation."""
    from tqdm import tqdm

    from engine.animate import FrameStep, fast, paint

    try:
        info = inspect_clip(args.content, CLI_LIMITS)
        width, height = frame_size(info.width, info.height, params.max_size)
        styles = load_styles(args.styles, (height, width), params)
    except (ClipError, ValueError, FileNotFoundError, WeightsError) as exc:
        print(f"neural-style: {exc}", file=sys.stderr)
        return 2
    side, count = max(width, height), info.frames
    mode = "fast" if args.fast else "painted"
    print(
        f"neural-style: {count} frames of {width}×{height} at {info.painted_fps():g} fps, {mode}; "
        "sound is dropped",
        file=sys.stderr,
    )
    frames = read_frames(args.content, params.max_size)
    if args.fast:
        from engine.adain import AdaIN

        assert decoder is not None
        model = AdaIN(weights, decoder)

        stylise = model.frames_painter(styles, args.alpha, params)
        steps = fast(frames, count, stylise, params.max_size)
    else:
        from engine.vgg import VGG19

        network = VGG19(weights)
        _estimate(network, params, side, count)
        start: Painter | None = None
        if decoder is not None:
            from engine.adain import AdaIN, initial_from_adain

            adain = AdaIN(weights, decoder)

            def start(frame: np.ndarray) -> np.ndarray:
                return initial_from_adain(adain, frame, styles, params, args.alpha)

        steps = paint(network, frames, count, styles, params, start=start)
    bar = tqdm(total=count, unit="frame", dynamic_ncols=True)
    step: FrameStep | None = None
    try:
        with ClipWriter(args.output, info.painted_fps()) as writer:
            for step in steps:
                if step.image is not None:
                    writer.write(step.image)
                    bar.update(1)
                if step.losses is not None:
                    bar.set_postfix(
                        it=f"{step.iteration}/{step.total}", loss=f"{step.losses.total:.4g}", refresh=False
                    )
                bar.set_description(f"frame {step.frame}/{step.frames}", refresh=True)
    except KeyboardInterrupt:
        bar.close()
        print("neural-style: interrupted; nothing written", file=sys.stderr)
        return 130
    except (ClipError, ValueError) as exc:
        bar.close()
        print(f"neural-style: {exc}", file=sys.stderr)
        return 2
    finally:
        frames.close()
    bar.close()
    written = step.frame if step is not None else 0
    print(f"wrote {args.output} ({written} frames, {mode}, no sound)")
    return 0


def _estimate(network: VGG19, params: StyleParams, side: int, frames: int) -> None:
    """Time a few iterations here (settling `auto` precision, as a worker does) and print how long the
    painted clip will take (engine.budget.clip_work)."""
    from engine.budget import clip_work
    from engine.pace import probe

    pace, _ = probe(network, params)
    work = clip_work(side, frames, params.iterations, params.frame_iterations, fast=False)
    print(f"neural-style: about {work * pace / 60:.0f} min ({frames} frames)", file=sys.stderr)
