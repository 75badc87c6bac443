"""Quality against wall-clock time: Adam (the seed's settings), L-BFGS and multi-scale, real weights.

    flock /tmp/bench.lock python bench/bench_quality.py [--size 256] [--pairs C:S ...] [--plot PNG]

For each content:style pair and method, one stylisation with the default StyleParams (only `max_size`,
`iterations`, `optimizer`, `multiscale` set) is run with a preview every `--every` iterations; each
preview's timestamp is kept and, after the run, its image (clipped to 0..255 as the user gets it; a coarse
scale's image resized to the full size first) is scored with the same full-size objective. The time each
method needs to reach the value Adam has after `--adam` iterations is reported, and the curves are drawn to
`--plot`. Tracing is warmed up before any timed run (each run then reuses the cached compiled steps, as a
long-lived worker does); computing the targets is inside every run's time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.images import IMAGES, need  # noqa: E402

PAIRS = ("tubingen.jpg:starry_night.jpg", "golden_gate.jpg:the_scream.jpg")
COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207))


@dataclass(frozen=True)
class Method:
    name: str
    optimizer: str
    multiscale: bool
    iterations: int


@dataclass
class Curve:
    method: Method
    points: list[tuple[float, int, float]]  # (seconds, iteration, objective of the clipped image)

    def time_to(self, value: float) -> float | None:
        return next((t for t, _, v in self.points if v <= value), None)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=Path, default=IMAGES)
    p.add_argument("--pairs", nargs="+", default=list(PAIRS), help="CONTENT:STYLE file names")
    p.add_argument("--size", type=int, default=256, help="long side")
    p.add_argument("--every", type=int, default=10, help="iterations between two scored previews")
    p.add_argument("--adam", type=int, default=1000, help="Adam's iterations: its final value is the bar")
    p.add_argument("--lbfgs", type=int, default=300, help="L-BFGS evaluations")
    p.add_argument("--ms-adam", type=int, default=600, help="multi-scale Adam's iterations (0 = skip)")
    p.add_argument("--ms-lbfgs", type=int, nargs="+", default=[300], help="multi-scale L-BFGS budgets")
    p.add_argument("--plot", type=Path, default=REPO / "docs/images/benchmarks/quality.png")
    p.add_argument("--json", type=Path, default=Path("/tmp/bench_quality.json"))
    p.add_argument("--report", action="store_true", help="only redo the table and plot from --json")
    args = p.parse_args(argv)
    if not args.report:
        need(args.images, [name for pair in args.pairs for name in pair.split(":")])
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        report(args.json, args.plot)
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    from engine.compiled import Compiled, compiled
    from engine.images import load_image, resize
    from engine.objective import Objective
    from engine.params import StyleParams
    from engine.stylize import Progress, iterate, prepare
    from engine.vgg import VGG19
    from engine.weights import load_vgg

    network = VGG19(load_vgg(None))
    methods = [Method("Adam", "adam", False, args.adam), Method("L-BFGS", "lbfgs", False, args.lbfgs)]
    if args.ms_adam:
        methods.append(Method("multi-scale Adam", "adam", True, args.ms_adam))
    methods += [Method(f"multi-scale L-BFGS {n}", "lbfgs", True, n) for n in args.ms_lbfgs]

    base = StyleParams(max_size=args.size, preview_every=args.every)
    results: dict[str, list[Curve]] = {}
    load_before = os.getloadavg()
    started = time.perf_counter()
    for pair in args.pairs:
        content_name, style_name = pair.split(":")
        content = load_image(args.images / content_name)
        style = load_image(args.images / style_name)
        target, styles = prepare(content, [style], base)
        judge = Objective(network, target, styles, base)
        score_fn = compiled(judge)

        def score(
            image: np.ndarray, judge: Objective = judge, target: np.ndarray = target, fn: Compiled = score_fn
        ) -> float:
            batch = tf.constant(network.preprocess(resize(image, target.shape[:2])))
            return float(fn.parts(batch, judge.targets, judge.coefficients)[3])

        # Warm-up: trace every compiled function at both sizes (coarse first, so the traces end relaxed).
        for optimizer in ("adam", "lbfgs"):
            params = base.with_overrides(optimizer=optimizer, multiscale=True, iterations=4, preview_every=0)
            for _ in iterate(network, content, [style], params):
                pass
        curves = []
        for method in methods:
            params = base.with_overrides(
                optimizer=method.optimizer, multiscale=method.multiscale, iterations=method.iterations
            )
            snapshots: list[tuple[float, int, np.ndarray]] = []
            begin = time.perf_counter()
            step: Progress | None = None
            for step in iterate(network, content, [style], params):
                if step.image is not None:
                    snapshots.append((time.perf_counter() - begin, step.iteration, step.image))
            points = [(t, i, score(image)) for t, i, image in snapshots]
            assert step is not None
            curves.append(Curve(method, points))
            print(
                f"{pair} {method.name}: {points[-1][0]:.1f} s, objective {points[-1][2]:.5g}",
                file=sys.stderr,
                flush=True,
            )
        results[pair] = curves
    load_after = os.getloadavg()

    before, after = (", ".join(f"{x:.2f}" for x in load) for load in (load_before, load_after))
    loads = f"{before} before, {after}"
    note = (
        f"Python {platform.python_version()}, TensorFlow {tf.__version__}, {os.cpu_count()} CPUs; "
        f"whole command {time.perf_counter() - started:.0f} s; load average (1, 5, 15 min) {loads} after"
    )
    curves_by_pair = {pair: {c.method.name: c.points for c in curves} for pair, curves in results.items()}
    args.json.write_text(json.dumps({"size": args.size, "note": note, "curves": curves_by_pair}))
    report(args.json, args.plot)
    return 0


def report(saved: Path, plot_path: Path) -> None:
    """The table and the plot from a run's saved curves (so they can be redrawn without running again)."""
    data = json.loads(saved.read_text())
    results = {
        pair: [
            Curve(Method(name, "", False, points[-1][1]), [(t, i, v) for t, i, v in points])
            for name, points in curves.items()
        ]
        for pair, curves in data["curves"].items()
    }
    plot(results, plot_path, data["size"])
    print(f"{data['note']}; long side {data['size']} px; objective of the clipped image, default weights.")
    print()
    print(
        "| pair | method | iterations | seconds | final objective "
        "| time to Adam's final value | × Adam's time | time to Adam's lowest value | × Adam's time to it |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for pair, curves in results.items():
        adam = curves[0]
        bar_time, _, bar = adam.points[-1]
        lowest = min(v for _, _, v in adam.points)
        lowest_time = adam.time_to(lowest)
        assert lowest_time is not None
        for curve in curves:
            seconds, iterations, final = curve.points[-1]
            cells = []
            for value, reference in ((bar, bar_time), (lowest, lowest_time)):
                reach = curve.time_to(value)
                if reach is None:
                    cells += ["not reached", "–"]
                else:
                    cells += [f"{reach:.1f} s", f"{reach / reference:.2f}"]
            print(
                f"| {pair.replace(':', ' × ')} | {curve.method.name} | {iterations} | {seconds:.1f} "
                f"| {final:.5g} | {' | '.join(cells)} |"
            )
    print()
    print(f"Plot: {plot_path}")


def plot(results: dict[str, list[Curve]], path: Path, size: int) -> None:
    """One panel per pair: log10 objective against seconds, a line per method, Adam's final value dashed."""
    width, height, margin = 760, 340, 60
    canvas = Image.new("RGB", (width, height * len(results)), "white")
    draw = ImageDraw.Draw(canvas)
    for row, (pair, curves) in enumerate(results.items()):
        top = row * height
        bar = curves[0].points[-1][2]
        x_max = max(t for c in curves for t, _, _ in c.points) * 1.02
        values = [v for c in curves for _, _, v in c.points]
        y_min = math.log10(min(values)) - 0.05
        y_max = min(math.log10(max(values)), math.log10(bar) + 1.5)
        left, right, upper, lower = margin, width - 20, top + 30, top + height - 40

        def xy(
            t: float,
            v: float,
            left: int = left,
            right: int = right,
            upper: int = upper,
            lower: int = lower,
            x_max: float = x_max,
            y_min: float = y_min,
            y_max: float = y_max,
        ) -> tuple[float, float]:
            y = min(max(math.log10(v), y_min), y_max)
            return left + (right - left) * t / x_max, lower - (lower - upper) * (y - y_min) / (y_max - y_min)

        draw.text(
            (left, top + 8),
            f"{pair.replace(':', ' x ')}, {size} px: objective (log scale) vs seconds",
            fill="black",
        )
        draw.rectangle((left, upper, right, lower), outline="black")
        for i in range(6):
            t = x_max * i / 5
            x = left + (right - left) * i / 5
            draw.line((x, lower, x, lower + 4), fill="black")
            draw.text((x - 10, lower + 6), f"{t:.0f}", fill="black")
            y_value = y_min + (y_max - y_min) * i / 5
            y = lower - (lower - upper) * i / 5
            draw.line((left - 4, y, left, y), fill="black")
            draw.text((4, y - 6), f"{10**y_value:.3g}", fill="black")
        bar_y = xy(0, bar)[1]
        for x in range(left, right, 8):
            draw.line((x, bar_y, x + 4, bar_y), fill=(120, 120, 120))
        for index, curve in enumerate(curves):
            colour = COLOURS[index % len(COLOURS)]
            draw.line([xy(t, v) for t, _, v in curve.points], fill=colour, width=2)
            legend_y = upper + 8 + 14 * index
            draw.line((right - 190, legend_y + 6, right - 170, legend_y + 6), fill=colour, width=3)
            draw.text((right - 165, legend_y), curve.method.name, fill="black")
        draw.text((right - 190, upper + 8 + 14 * len(curves)), "- - Adam's final value", fill=(120, 120, 120))
    canvas.save(path, format="PNG")


if __name__ == "__main__":
    raise SystemExit(main())
