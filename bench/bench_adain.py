"""Seconds per AdaIN preview on this machine, with the real VGG-19 weights and decoder.

    python bench/bench_adain.py [--images DIR] [--sizes 256 512 1024] [--runs 5] [--threads N]

For each long side it times `AdaIN.preview` of tubingen.jpg in the style of starry_night.jpg: the first
call (at the first size it also traces the two compiled functions; the signatures take any size, so later
sizes do not trace again), then the median of `--runs` warm calls. A preview includes scaling the full-size
photos down and encoding the style; the "network" column times only the content's encode → AdaIN → decode
pass with the style's statistics already taken. Prints a Markdown block.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.images import IMAGES, need  # noqa: E402


@dataclass(frozen=True)
class Row:
    size: int
    shape: tuple[int, int]
    first: float
    warm: list[float]
    network: list[float]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=Path, default=IMAGES, help="folder with the two images")
    p.add_argument("--content", default="tubingen.jpg")
    p.add_argument("--style", default="starry_night.jpg")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024], help="long sides to measure")
    p.add_argument("--runs", type=int, default=5, help="warm previews timed per size")
    p.add_argument("--threads", type=int, help="TensorFlow intra-op threads (default: TensorFlow's choice)")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    need(args.images, [args.content, args.style])
    return args


def _seconds(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from engine.images import fit_long_side, load_image
    from engine.weights import WeightsError, load_decoder, load_vgg

    try:
        weights = load_vgg()
        decoder = load_decoder()
        content = load_image(args.images / args.content)
        style = load_image(args.images / args.style)
    except (WeightsError, ValueError) as exc:
        print(f"bench_adain: {exc}", file=sys.stderr)
        return 2
    if args.threads:
        from engine.host.devices import configure_tensorflow

        configure_tensorflow(args.threads)
    import numpy as np
    import tensorflow as tf

    from engine import adain
    from engine.precision import resolve

    load_before = os.getloadavg()
    model = adain.AdaIN(weights, decoder)
    rows = []
    for size in args.sizes:
        preview = partial(model.preview, content, [style], max_size=size)
        first = _seconds(preview)
        warm = [_seconds(preview) for _ in range(args.runs)]
        small = fit_long_side(content, size)
        # The pass alone; which statistics it is given does not change its cost.
        mean, std = model.style_target([small])
        batch = model._preprocess(adain._pad(small, adain.SCALE))
        alpha = tf.constant(1.0)
        _, stylise = model._functions(resolve("auto"))  # the compiled whole pass the preview runs
        network = []
        for _ in range(args.runs):
            start = time.perf_counter()
            stylise(batch, mean, std, alpha).numpy()  # .numpy(): wait for the result
            network.append(time.perf_counter() - start)
        rows.append(Row(size, small.shape[:2], first, warm, network))
        print(
            f"{size} px: first {first:.2f} s, median {statistics.median(warm):.3f} s, "
            f"network {statistics.median(network):.3f} s",
            file=sys.stderr,
        )
    load_after = os.getloadavg()

    threads = tf.config.threading.get_intra_op_parallelism_threads() or "TF default"
    print(
        f"Python {platform.python_version()}, TensorFlow {tf.__version__}, numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs, threads: {threads}; {args.content} in the style of {args.style}, alpha 1."
    )
    print()
    print(
        f"| long side | output (H×W) | first preview (s) | preview median of {args.runs} (s) "
        f"| min (s) | network only, median (s) |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row.size} | {row.shape[0]}×{row.shape[1]} | {row.first:.2f} "
            f"| {statistics.median(row.warm):.3f} | {min(row.warm):.3f} "
            f"| {statistics.median(row.network):.3f} |"
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
