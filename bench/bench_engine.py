"""Seconds per iteration of the engine on this machine, default StyleParams and the real VGG-19 weights.

    python bench/bench_engine.py [--images DIR] [--sizes 256 512] [--iterations 20] [--threads N]

For each long side it runs one stylisation of tubingen.jpg in the style of starry_night.jpg and times
every iteration. The first `--warmup` iterations (the first one builds the targets and traces the compiled
step) are reported apart as warm-up; the steady state is the median of the next `--iterations`. The last
step, which also scores the final image, is not timed. Prints a Markdown block to paste into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from engine.vgg import VGG19

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.images import IMAGES, need  # noqa: E402


@dataclass(frozen=True)
class Row:
    size: int
    shape: tuple[int, int]
    warmup_seconds: float
    steady: list[float]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=Path, default=IMAGES, help="folder with the two images")
    p.add_argument("--content", default="tubingen.jpg")
    p.add_argument("--style", default="starry_night.jpg")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="long sides to measure")
    p.add_argument("--iterations", type=int, default=20, help="timed iterations per size")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations first (≥ 1: the tracing one)")
    p.add_argument("--threads", type=int, help="TensorFlow intra-op threads (default: TensorFlow's choice)")
    p.add_argument("--weights", type=Path, help="weights file (default: $VGG_WEIGHTS, else the cache)")
    args = p.parse_args(argv)
    if args.warmup < 1 or args.iterations < 1:
        p.error("--warmup and --iterations must be at least 1")
    need(args.images, [args.content, args.style])
    return args


def measure(
    network: VGG19, content: np.ndarray, style: np.ndarray, size: int, warmup: int, timed: int
) -> Row:
    from engine.params import StyleParams
    from engine.stylize import iterate

    # One extra iteration at the end: the last step also scores the final image, so it is not timed.
    params = StyleParams(max_size=size, iterations=warmup + timed + 1)
    stamps = [time.perf_counter()]
    shape = (0, 0)
    for step in iterate(network, content, [style], params):
        stamps.append(time.perf_counter())
        if step.image is not None:
            shape = step.image.shape[:2]
    durations = [b - a for a, b in itertools.pairwise(stamps)]
    return Row(size, shape, sum(durations[:warmup]), durations[warmup : warmup + timed])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from engine.images import load_image
    from engine.weights import WeightsError, load_vgg

    try:
        weights = load_vgg(args.weights)
        content = load_image(args.images / args.content)
        style = load_image(args.images / args.style)
    except (WeightsError, ValueError) as exc:
        print(f"bench_engine: {exc}", file=sys.stderr)
        return 2
    if args.threads:
        from engine.host.devices import configure_tensorflow

        configure_tensorflow(args.threads)
    import numpy as np
    import tensorflow as tf

    from engine.vgg import VGG19

    network = VGG19(weights)
    load_before = os.getloadavg()
    rows = []
    for size in args.sizes:
        row = measure(network, content, style, size, args.warmup, args.iterations)
        rows.append(row)
        print(
            f"{size} px: warm-up {row.warmup_seconds:.2f} s, median {statistics.median(row.steady):.3f} s/it",
            file=sys.stderr,
        )
    load_after = os.getloadavg()

    threads = tf.config.threading.get_intra_op_parallelism_threads() or "TF default"
    print(
        f"Python {platform.python_version()}, TensorFlow {tf.__version__}, numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs, threads: {threads}; weights: {weights.source.split(' ')[0]}; "
        f"{args.content} in the style of {args.style}, default StyleParams."
    )
    print()
    print(
        f"| long side | output (H×W) | warm-up: first {args.warmup} it (s) "
        f"| s/iter median of {args.iterations} | s/iter min | s/iter max |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row.size} | {row.shape[0]}×{row.shape[1]} | {row.warmup_seconds:.2f} "
            f"| {statistics.median(row.steady):.3f} | {min(row.steady):.3f} | {max(row.steady):.3f} |"
        )
    print()
    print(
        "Load average (1, 5, 15 min) before: {:.2f}, {:.2f}, {:.2f}; after: {:.2f}, {:.2f}, {:.2f}.".format(
            *load_before, *load_after
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
