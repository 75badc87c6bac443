"""Does starting from the AdaIN image make the optimisation converge faster?

For each size: Adam from the content image for N iterations (the reference), then Adam from the AdaIN
feed-forward image until its loss reaches the reference's best; both with the default parameters and the
real weights. Reports wall-clock seconds for each (the AdaIN run includes its feed-forward pass).

    python bench/bench_adain_start.py --sizes 256 --iterations 1000
    python bench/bench_adain_start.py --sizes 512 --iterations 300
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from engine.adain import AdaIN, initial_from_adain
from engine.images import load_image
from engine.params import StyleParams
from engine.stylize import iterate
from engine.vgg import VGG19
from engine.weights import load_decoder, load_vgg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.images import IMAGES, need


def run(size: int, iterations: int, content_name: str, style_name: str, images: Path) -> dict[str, float]:
    weights = load_vgg()
    network, model = VGG19(weights), AdaIN(weights, load_decoder())
    content, style = load_image(images / content_name), load_image(images / style_name)
    params = StyleParams(max_size=size, iterations=iterations, seed=0)

    began = time.perf_counter()
    best = float("inf")
    for step in iterate(network, content, [style], params):
        best = min(best, step.losses.total)
    reference_seconds = time.perf_counter() - began

    began = time.perf_counter()
    start = initial_from_adain(model, content, [style], params)
    preview_seconds = time.perf_counter() - began
    reached_at, loss = None, float("inf")
    for step in iterate(network, content, [style], params.with_overrides(initial="adain"), start=start):
        loss = min(loss, step.losses.total)
        if loss <= best:
            reached_at = step.iteration
            break
    adain_seconds = time.perf_counter() - began
    return {
        "size": size,
        "reference iterations": iterations,
        "reference loss": round(best, 3),
        "reference seconds": round(reference_seconds, 1),
        "AdaIN pass seconds": round(preview_seconds, 2),
        "AdaIN start: iterations to reach it": reached_at if reached_at is not None else float("nan"),
        "AdaIN start: seconds to reach it": round(adain_seconds, 1),
        "ratio": round(adain_seconds / reference_seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[256])
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--content", default="tubingen.jpg")
    parser.add_argument("--style", default="starry_night.jpg")
    parser.add_argument("--images", type=Path, default=IMAGES)
    args = parser.parse_args()
    need(args.images, [args.content, args.style])
    rows = [run(size, args.iterations, args.content, args.style, args.images) for size in args.sizes]
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---:|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(str(v) for v in row.values()) + " |")


if __name__ == "__main__":
    main()
