"""Flicker, time and memory of painting a clip, with the real VGG-19 weights and AdaIN decoder.

    python bench/bench_clip.py --images /work/shared/images --side 256 --frames 8

The clip is made here: a slow pan with a slight zoom across tubingen.jpg (`--frames` frames of a
3-second move at 12 fps), painted in starry_night's style. Measured on it:

- (a) every frame painted on its own, as a picture (`--alone` frames of it);
- (b) painted mode (engine.animate.paint) for each `--frame-iterations` at the default temporal weight,
  and each `--temporal-weights` at the default frame iterations; the first frame is painted once and
  shared by every run (`paint(first=…)`), so they differ only in the later frames;
- (c, d) fast mode without and with the flow blending, for each `--blends`, on every frame.

Flicker (engine.flow.flicker) is against the source clip's own, by the same flow. Ghosting (fast mode) is
the mean |output − the frame's own AdaIN painting|: what blending moves a frame away from its painting.
The objective of a later frame is its content + style + TV loss (the temporal term left out), comparable
with frame (a)'s. Peak memory is the process's (ru_maxrss), so it only grows from row to row.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=Path, default=HERE / "images")
    p.add_argument("--content", default="tubingen.jpg")
    p.add_argument("--style", default="starry_night.jpg")
    p.add_argument("--side", type=int, default=256)
    p.add_argument("--frames", type=int, default=8, help="frames painted (of a 3 s move at 12 fps)")
    p.add_argument("--iterations", type=int, default=100, help="of the first frame (L-BFGS, as the bot)")
    p.add_argument("--frame-iterations", type=int, nargs="*", default=[10, 20, 40])
    p.add_argument("--temporal-weights", type=float, nargs="*", default=[])
    p.add_argument("--alone", type=int, default=4, help="frames painted on their own, for (a); 0: fast only")
    p.add_argument("--blends", type=float, nargs="*", default=[0.3, 0.5, 0.6, 0.7, 0.8])
    p.add_argument("--strip", type=Path, help="write a strip of frames (PNG) here")
    p.add_argument("--keep", type=Path, help="keep the frames painted alone here (.npz), and reuse them")
    p.add_argument("--threads", type=int)
    return p.parse_args(argv)


def clip(picture: np.ndarray, side: int, frames: int) -> list[np.ndarray]:
    """`frames` frames of a 3-second pan (a fifth of the width) and 10 % zoom at 12 fps, long side `side`."""
    from engine.images import resize

    height, width = picture.shape[:2]
    window_w, window_h = 0.7 * width, 0.7 * height
    out_h = round(side * window_h / window_w) // 2 * 2
    out = []
    for k in range(frames):
        t = k / 36.0  # 36 frames in the 3-second move
        zoom = 1.0 - 0.1 * t
        w, h = window_w * zoom, window_h * zoom
        left = 0.05 * width + 0.2 * width * t
        top = (height - h) / 2
        out.append(resize(picture, (out_h, side), box=(left, top, left + w, top + h)))
    return out


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from engine.images import load_image, save_image
    from engine.weights import WeightsError, load_decoder, load_vgg

    try:
        weights = load_vgg()
        decoder = load_decoder()
        picture = load_image(args.images / args.content)
        style = load_image(args.images / args.style)
    except (WeightsError, ValueError, FileNotFoundError) as exc:
        print(f"bench_clip: {exc}", file=sys.stderr)
        return 2
    if args.threads:
        from engine.host.devices import configure_tensorflow

        configure_tensorflow(args.threads)
    from engine.adain import AdaIN
    from engine.animate import fast, paint
    from engine.flow import flicker, motion
    from engine.params import StyleParams
    from engine.vgg import VGG19

    load_before = os.getloadavg()
    frames = clip(picture, args.side, args.frames)
    began = time.perf_counter()
    moves = [motion(a, b) for a, b in itertools.pairwise(frames)]
    flow_seconds = (time.perf_counter() - began) / max(1, len(moves))
    source = flicker(frames, moves)
    network = VGG19(weights)
    params = StyleParams(iterations=args.iterations, max_size=args.side, optimizer="lbfgs", margin=16, seed=0)
    print(
        f"{len(frames)} frames of {frames[0].shape[1]}×{frames[0].shape[0]}; "
        f"flow {flow_seconds:.3f} s per frame"
    )
    print(f"source flicker {source:.2f}")
    rows: list[str] = []

    def objective(losses: object) -> float:
        return float(losses.content + losses.style + losses.tv)  # type: ignore[attr-defined]

    # (a) and the shared first frame.
    alone: list[np.ndarray] = []
    alone_obj: list[float] = []
    alone_s: list[float] = []
    kept = np.load(args.keep) if args.keep and args.keep.is_file() else {}
    for frame in frames[: args.alone]:
        start = time.perf_counter()
        name = f"{args.side}-{len(alone)}"
        if name in kept:  # (image, objective, seconds) of an earlier run with these settings
            print(f"alone frame {len(alone) + 1}: kept in {args.keep}")
            alone.append(kept[name])
            alone_obj.append(float(kept[name + "-objective"]))
            alone_s.append(float(kept[name + "-seconds"]))
            continue
        last = list(paint(network, [frame], 1, [style], params))[-1]
        alone_s.append(time.perf_counter() - start)
        assert last.image is not None
        assert last.losses is not None
        alone.append(last.image)
        alone_obj.append(objective(last.losses))
        print(f"alone frame {len(alone)}: {alone_s[-1]:.1f} s, objective {alone_obj[-1]:.4g}", flush=True)
        if args.keep:
            kept = {
                **kept,
                name: alone[-1],
                name + "-objective": alone_obj[-1],
                name + "-seconds": alone_s[-1],
            }
            np.savez(args.keep, **kept)
    settings = [(n, params.temporal_weight) for n in args.frame_iterations]
    settings += [(params.frame_iterations, w) for w in args.temporal_weights]
    painted: list[np.ndarray] = []
    if len(alone) > 1:  # one frame alone only starts the painted runs
        a_flicker = flicker(alone, moves[: len(alone) - 1])
        rows.append(
            f"| (a) each frame alone, {args.iterations} it | {a_flicker:.2f} | {a_flicker / source:.1f}× | "
            f"{np.mean(alone_s):.1f} | {np.mean(alone_obj[1:]):.4g} | {peak_mb():.0f} |"
        )
        print(rows[-1], flush=True)
    for iterations, weight in settings if alone else []:
        run = params.with_overrides(frame_iterations=iterations, temporal_weight=weight)
        start = time.perf_counter()
        steps = list(paint(network, frames, len(frames), [style], run, first=alone[0]))
        seconds = (time.perf_counter() - start) / (len(frames) - 1)
        images = [s.image for s in steps if s.image is not None]
        later = [objective(s.losses) for s in steps if s.image is not None and s.losses is not None]
        score = flicker(images, moves)
        head = flicker(images[: args.alone], moves[: args.alone - 1])
        rows.append(
            f"| (b) painted, {iterations} it/frame, temporal {weight:g} | {score:.2f} "
            f"(first {args.alone}: {head:.2f}) | {score / source:.1f}× | {seconds:.1f} | "
            f"{np.mean(later):.4g} | {peak_mb():.0f} |"
        )
        print(rows[-1], flush=True)
        if iterations == params.frame_iterations and weight == params.temporal_weight:
            painted = images

    model = AdaIN(weights, decoder)

    def stylise(frame: np.ndarray) -> np.ndarray:
        return model.preview(frame, [style], max_size=args.side)

    start = time.perf_counter()
    own = [s.image for s in fast(frames, len(frames), stylise, args.side, blend=0.0) if s.image is not None]
    per_frame = (time.perf_counter() - start) / len(frames)
    score = flicker(own, moves)
    rows.append(
        f"| (c) fast, no blending | {score:.2f} | {score / source:.1f}× | {per_frame:.2f} | ghost 0 | "
        f"{peak_mb():.0f} |"
    )
    print(rows[-1], flush=True)
    blended: list[np.ndarray] = own
    for blend in args.blends:
        start = time.perf_counter()
        images = [
            s.image for s in fast(frames, len(frames), stylise, args.side, blend=blend) if s.image is not None
        ]
        per_frame = (time.perf_counter() - start) / len(frames)
        score = flicker(images, moves)
        ghost = float(np.mean([np.abs(a - b).mean() for a, b in zip(images, own, strict=True)]))
        rows.append(
            f"| (d) fast, blend {blend:g} | {score:.2f} | {score / source:.1f}× | {per_frame:.2f} | "
            f"ghost {ghost:.1f} | {peak_mb():.0f} |"
        )
        print(rows[-1], flush=True)
        if blend == 0.6:
            blended = images

    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    print("| run | flicker | × source | s/frame | objective (later frames) | peak MB |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.strip and painted:
        save_image(strip([frames, alone, painted, blended], 4), args.strip)
        print(f"wrote {args.strip}: rows source, alone, painted, fast; frames 1-4")
    return 0


def strip(rows: list[list[np.ndarray]], count: int) -> np.ndarray:
    """A grid: one row per list (its first `count` frames), 4 px gaps, white."""
    height, width = rows[0][0].shape[:2]
    gap = 4
    grid = np.full((len(rows) * (height + gap) - gap, count * (width + gap) - gap, 3), 255.0, np.float32)
    for r, images in enumerate(rows):
        for c, image in enumerate(images[:count]):
            grid[
                r * (height + gap) : r * (height + gap) + height,
                c * (width + gap) : c * (width + gap) + width,
            ] = image
    return grid


if __name__ == "__main__":
    raise SystemExit(main())
