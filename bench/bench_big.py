"""Big paintings coarse to fine (issue 14): time, memory and quality of the bot's job at 512, 1024, 2048 px.

    python bench/bench_big.py all --lock /tmp/bench.lock [--out /tmp/big] [--variant 60 0.7]
    flock /tmp/bench.lock python bench/bench_big.py job --size 2048 [--single] [--iterations 100]
        [--share 0.5] [--min-finer 10] [--enlarge-finer] [--levels WEIGHT] [--level-filter FILTER]
        [--finer KEY=NUMBER ...] [--pooling max|avg]
        [--precision auto|float32|bfloat16] [--style starry_night.jpg] [--every K] --name NAME
    python bench/bench_big.py report [--out /tmp/big] [--crop 700 300]

The bot's default job (L-BFGS 100 with its 2 Adam steps, margin 16, from the AdaIN image, precision auto,
the engine's multiscale_levels), real weights, tubingen × starry_night (and × a second style for the
sheet). tubingen is 1024×768: for sizes above that it is ENLARGED here with engine.images.resize (the
engine only shrinks), so a 2048 painting has no more photographic detail than a 1024 one; the style images
are at most 1200 px wide, and a finer scale never enlarges a style beyond its own pixels.

  job     one painting in this process: its JSON (per-scale seconds and s/iteration, AdaIN seconds, idle
          and peak resident memory from getrusage) in OUT/NAME.json, its image in OUT/NAME.png. Variants of
          the finer scales: --share and --min-finer set engine.multiscale's FINER_SHARE and MIN_FINER;
          --enlarge-finer sizes the style at every scale as the base scale does (to the painting's width,
          enlarged if need be) where the engine never enlarges it beyond its own pixels at a finer scale;
          --levels W sets StyleParams.multiscale_levels, the weight of the style matched on the image
          shrunk to the coarser scales (default: the engine's; 0: off, the engine before it had them), and
          --level-filter how it is shrunk (engine.objective.LEVEL_FILTER, a tf.image.resize method: lanczos3,
          bilinear, bicubic, mitchellcubic…). --finer changes StyleParams at the scales above the base only
          (--finer tv_weight=1.0; it tells them by their coarser levels, so not with --levels 0);
          --pooling is StyleParams.pooling. With --every K the held-out distance
          of every K-th iteration's image is printed (a curve per scale).
  all     every job below, each in its own process (so each peak is its own; with --lock, each under flock),
          skipping those already done:
          the default job at 512/1024/2048, and at 2048 without the coarser levels' style (--levels 0);
          short single-scale runs (--short iterations) at 1024 and at
          2048 in bfloat16 and float32 (seconds per iteration, memory); single scale at 1024 and 2048 with
          as many iterations as fit in the coarse-to-fine job's wall time; the second style at 512 and
          2048; with --variant, the 2048 job with other base iterations and finer scales getting another
          share of the previous scale's iterations (engine.multiscale.FINER_SHARE). Then `report`.
  report  the tables for BENCHMARKS.md; the held-out style distance of every result shrunk to 512 px;
          docs/images/benchmarks/big_sheet.jpg and big_crop.jpg.

Held-out style distance: Grams (float32, engine.vgg.gram) at VGG-19 layers the objective does not use
(HELD_OUT), each as ‖G(result) − G(style)‖² / ‖G(style)‖², averaged over the layers; the style sized as
the 512 px job sizes it (engine.stylize.prepare). It scores how much of the style's texture statistics a
result has at arm's length, by features the optimisation was not fitted to. The report gives it for the
result shrunk by the engine's Lanczos resize and also by Pillow's bilinear, bicubic and box filters: the
coarser levels' style fits the picture shrunk one way, and a viewer may shrink it another.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_ray import uptime  # noqa: E402
from bench.images import IMAGES, need  # noqa: E402

if TYPE_CHECKING:
    import numpy as np

    from engine.vgg import VGG19

MARGIN = 16  # the bot's (bot/requests.py)
HELD_OUT = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
SIZES = (512, 1024, 2048)
ARM = 512  # results are compared shrunk to this long side
# Pillow's filters the distance is also taken with, so a result fitted to one way of shrinking (the levels'
# filter) does not pass unseen: a viewer shrinks with any of them. Lanczos is the main measure.
SHRINKS = {"lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4}  # PIL.Image.Resampling values
SHEET = REPO / "docs/images/benchmarks/big_sheet.jpg"
CROP = REPO / "docs/images/benchmarks/big_crop.jpg"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=Path, default=IMAGES)
    p.add_argument("--content", default="tubingen.jpg")
    p.add_argument("--out", type=Path, default=Path("/tmp/big"))
    parts = p.add_subparsers(dest="part", required=True)
    job = parts.add_parser("job", help="one painting in this process")
    job.add_argument("--name", required=True)
    job.add_argument("--size", type=int, required=True)
    job.add_argument("--style", default="starry_night.jpg")
    job.add_argument("--iterations", type=int, default=100)
    job.add_argument("--single", action="store_true", help="multiscale=False")
    job.add_argument("--share", type=float, help="engine.multiscale.FINER_SHARE for this run")
    job.add_argument("--min-finer", type=int, help="engine.multiscale.MIN_FINER for this run")
    job.add_argument("--enlarge-finer", action="store_true", help="finer scales' style sized as the base's")
    job.add_argument(
        "--levels", type=float, help="StyleParams.multiscale_levels for this run (0: off; default: engine's)"
    )
    job.add_argument("--every", type=int, default=0, help="print the held-out distance every K iterations")
    job.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16"))
    job.add_argument("--finer", nargs="*", default=[], help="KEY=NUMBER: StyleParams changed above the base")
    job.add_argument("--level-filter", help="engine.objective.LEVEL_FILTER for this run")
    job.add_argument("--pooling", default="max", choices=("max", "avg"), help="StyleParams.pooling")
    every = parts.add_parser("all", help="every job, each in its own process, then the report")
    every.add_argument("--style2", default="the_scream.jpg", help="the sheet's second style")
    every.add_argument("--short", type=int, default=6, help="iterations of the short timing runs")
    every.add_argument(
        "--variant",
        nargs=2,
        metavar=("ITERATIONS", "SHARE"),
        help="also the 2048 job with these base iterations and engine.multiscale.FINER_SHARE",
    )
    every.add_argument("--lock", type=Path, help="run each job under `flock LOCK` (other benchmarks between)")
    every.add_argument("--crop", type=int, nargs=2, default=(700, 300), metavar=("X", "Y"))
    report = parts.add_parser("report", help="tables, distances, sheet and crop from the saved jobs")
    report.add_argument("--crop", type=int, nargs=2, default=(700, 300), metavar=("X", "Y"))
    return p.parse_args(argv)


class HeldOut:
    """The held-out style distance of images against one style: per layer of HELD_OUT, at ARM px."""

    def __init__(self, network: VGG19, content: np.ndarray, style: np.ndarray) -> None:
        from engine.params import StyleParams
        from engine.stylize import prepare

        self.network = network
        self.targets = self.grams(prepare(content, [style], StyleParams(max_size=ARM))[1][0])

    def grams(self, image: np.ndarray) -> dict[str, np.ndarray]:
        import tensorflow as tf

        from engine.vgg import gram

        features = self.network.features(tf.constant(self.network.preprocess(image)), HELD_OUT)
        return {layer: gram(f).numpy() for layer, f in features.items()}

    def distances(self, image: np.ndarray, shrink: str = "lanczos") -> list[float]:
        """‖G(image at ARM px) − G(style)‖² / ‖G(style)‖² per layer of HELD_OUT, the image shrunk by the
        engine's resize with the filter of SHRINKS named `shrink` (Lanczos, as the engine shrinks)."""
        import numpy as np
        from PIL import Image

        from engine.images import fit_long_side

        own = self.grams(fit_long_side(image, ARM, Image.Resampling(SHRINKS[shrink])))
        return [float(np.sum((own[k] - g) ** 2) / np.sum(g**2)) for k, g in self.targets.items()]


def rss_mb() -> float:
    """Peak resident memory of this process so far, MB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def job(args: argparse.Namespace) -> None:
    import engine.multiscale
    import engine.objective
    import engine.stylize
    from engine.adain import AdaIN, initial_from_adain
    from engine.images import load_image, resize, save_image
    from engine.params import StyleParams
    from engine.precision import resolve
    from engine.stylize import iterate
    from engine.vgg import VGG19
    from engine.weights import load_decoder, load_vgg

    weights = load_vgg(None)
    network, model = VGG19(weights), AdaIN(weights, load_decoder())
    content, style = load_image(args.images / args.content), load_image(args.images / args.style)
    idle = rss_mb()
    original = content.shape[:2]
    if args.size > max(original):  # the engine only shrinks: enlarge the photo to the wanted size
        factor = args.size / max(original)
        content = resize(content, (round(original[0] * factor), round(original[1] * factor)))
    if args.finer:
        if args.levels == 0:
            raise SystemExit("--finer needs the coarser levels: it tells a finer scale by them")
        changes = {k: float(v) for k, v in (item.split("=") for item in args.finer)}
        plain = engine.stylize.Objective

        def finer(network: Any, canvas: Any, styles: Any, params: Any, coarser: Any = ()) -> Any:
            changed = params.with_overrides(**changes) if coarser else params  # only the base has no levels
            return plain(network, canvas, styles, changed, coarser)

        engine.stylize.Objective = finer
    if args.level_filter is not None:
        engine.objective.LEVEL_FILTER = args.level_filter
    if args.share is not None:
        engine.multiscale.FINER_SHARE = args.share
    if args.min_finer is not None:
        engine.multiscale.MIN_FINER = args.min_finer
    if args.enlarge_finer:
        own = engine.stylize.prepare

        def enlarged(
            content: np.ndarray, styles: Sequence[np.ndarray], params: StyleParams, enlarge: bool = True
        ) -> tuple[np.ndarray, list[np.ndarray]]:
            return own(content, styles, params, True)

        engine.stylize.prepare = enlarged
    params = StyleParams(
        iterations=args.iterations,
        max_size=args.size,
        optimizer="lbfgs",
        initial="adain",
        margin=MARGIN,
        multiscale=not args.single,
        precision=args.precision,
        preview_every=args.every,
        pooling=args.pooling,
    )
    if args.levels is not None:
        params = params.with_overrides(multiscale_levels=args.levels)
    curve = HeldOut(network, load_image(args.images / args.content), style) if args.every else None
    plan = engine.multiscale.schedule(args.size, args.iterations, params.multiscale_base)
    began = time.perf_counter()
    start = initial_from_adain(model, content, [style], params)
    adain = time.perf_counter() - began
    events: list[tuple[float, int, int]] = []  # (seconds since the start, scale, side) per iteration
    image: np.ndarray | None = None
    losses = None
    measuring = 0.0  # seconds spent on the curve's distances, left out of the timings
    for progress in iterate(network, content, [style], params, start=start):
        events.append((time.perf_counter() - began - measuring, progress.scale, progress.side))
        image, losses = progress.image, progress.losses
        if curve is not None and image is not None and progress.iteration < progress.total:
            t = time.perf_counter()
            layers = curve.distances(image)
            print(
                f"iteration {progress.iteration} (scale {progress.scale}, {progress.side} px): "
                f"{statistics.mean(layers):.4f} ({', '.join(f'{x:.3f}' for x in layers)})",
                file=sys.stderr,
                flush=True,
            )
            measuring += time.perf_counter() - t
    seconds = time.perf_counter() - began - measuring
    assert image is not None
    assert losses is not None
    scales = []
    previous = adain
    for scale in sorted({e[1] for e in events}):
        stamps = [t for t, s, _ in events if s == scale]
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        # The first scale's first gaps are Adam's second warm-up step and L-BFGS's first, traced, evaluation.
        steady = gaps[2:] if scale == 1 else gaps
        scales.append(
            {
                "side": next(side for _, s, side in events if s == scale),
                "iterations": len(stamps),
                "seconds": stamps[-1] - previous,
                "first": stamps[0] - previous,  # targets, tracing and the first evaluation
                "per_iteration": statistics.median(steady) if steady else None,
                "steady": len(steady),
            }
        )
        previous = stamps[-1]
    save_image(image, args.out / f"{args.name}.png")
    record = {
        "name": args.name,
        "size": args.size,
        "style": args.style,
        "shape": list(image.shape[:2]),
        "enlarged_from": list(original) if args.size > max(original) else None,
        "iterations": args.iterations,
        "single": args.single,
        "share": engine.multiscale.FINER_SHARE,
        "min_finer": engine.multiscale.MIN_FINER,
        "enlarge_finer": args.enlarge_finer,
        "levels": params.multiscale_levels,
        "level_filter": engine.objective.LEVEL_FILTER,
        "finer": args.finer,
        "pooling": args.pooling,
        "plan": [] if args.single else plan,
        "precision": resolve(args.precision).name,
        "adain": adain,
        "seconds": seconds,
        "scales": scales,
        "losses": [losses.content, losses.style, losses.tv, losses.total],
        "idle_mb": idle,
        "peak_mb": rss_mb(),
    }
    (args.out / f"{args.name}.json").write_text(json.dumps(record))
    print(json.dumps(record), flush=True)


def levels(run: dict[str, Any]) -> float:
    """A run's multiscale_levels; runs saved before the engine had them had none (or the prototype's)."""
    return float(run.get("levels", run.get("pyramid") or 0.0))


def load(out: Path, name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((out / f"{name}.json").read_text())
    return result


def run_job(args: argparse.Namespace, name: str, *flags: str) -> dict[str, Any]:
    """One job in a fresh process (its own peak memory), unless OUT/NAME.json exists already."""
    if not (args.out / f"{name}.json").exists():
        command = ["flock", str(args.lock)] if args.lock else []
        command += [sys.executable, __file__, "--images", str(args.images), "--content", args.content]
        command += ["--out", str(args.out), "job", "--name", name, *flags]
        print(f"{time.strftime('%H:%M:%S')} {name}: {' '.join(flags)}", file=sys.stderr, flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return load(args.out, name)


def equal_time(target: dict[str, Any], short: dict[str, Any]) -> int:
    """Single-scale iterations that take about as long as `target`: the short single-scale run's time
    (AdaIN, targets, tracing included) plus its steady seconds per iteration for each one more."""
    more: float = (target["seconds"] - short["seconds"]) / short["scales"][0]["per_iteration"]
    return int(short["iterations"]) + max(0, math.floor(more))


def every(args: argparse.Namespace) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"uptime before: {uptime()}", file=sys.stderr, flush=True)
    for size in SIZES:
        run_job(args, f"default_{size}", "--size", str(size))
    run_job(args, "levels0_2048", "--size", "2048", "--levels", "0")
    n = str(args.short)
    run_job(args, "short_1024", "--size", "1024", "--single", "--iterations", n, "--precision", "bfloat16")
    run_job(args, "short_2048", "--size", "2048", "--single", "--iterations", n, "--precision", "bfloat16")
    run_job(args, "short_2048_f32", "--size", "2048", "--single", "--iterations", n, "--precision", "float32")
    for size in (1024, 2048):
        count = equal_time(load(args.out, f"default_{size}"), load(args.out, f"short_{size}"))
        run_job(args, f"single_{size}", "--size", str(size), "--single", "--iterations", str(count))
    for size in (512, 2048):
        run_job(args, f"style2_{size}", "--size", str(size), "--style", args.style2)
    if args.variant is not None:
        iterations, share = args.variant
        run_job(args, "variant_2048", "--size", "2048", "--iterations", iterations, "--share", share)
    print(f"uptime after: {uptime()}", file=sys.stderr, flush=True)
    report(args)


def report(args: argparse.Namespace) -> None:
    from PIL import Image

    from bench.bench_precision import machine
    from bench.sheet import tile
    from engine.images import fit_long_side, load_image, to_uint8
    from engine.vgg import VGG19
    from engine.weights import load_vgg

    order = [f"default_{s}" for s in SIZES] + ["levels0_2048", "short_1024", "short_2048", "short_2048_f32"]
    order += ["single_1024"]
    order += ["single_2048", "variant_2048", "style2_512", "style2_2048"]
    order += sorted({p.stem for p in args.out.glob("*.json")} - set(order))  # jobs run by hand
    runs = {n: load(args.out, n) for n in order if (args.out / f"{n}.json").exists()}
    network = VGG19(load_vgg(None))
    content = load_image(args.images / args.content)
    measures: dict[str, HeldOut] = {}

    def distance(image: np.ndarray, style_name: str, shrink: str = "lanczos") -> list[float]:
        if style_name not in measures:
            measures[style_name] = HeldOut(network, content, load_image(args.images / style_name))
        return measures[style_name].distances(image, shrink)

    pictures = {name: load_image(args.out / f"{name}.png") for name in runs}
    layers = {name: distance(pictures[name], run["style"]) for name, run in runs.items()}
    others = [shrink for shrink in SHRINKS if shrink != "lanczos"]
    shrinks = {
        name: [statistics.mean(distance(pictures[name], run["style"], shrink)) for shrink in others]
        for name, run in runs.items()
    }
    scores = {name: statistics.mean(values) for name, values in layers.items()}
    styles = {r["style"] for r in runs.values()}
    photo = {s: statistics.mean(distance(fit_long_side(content, ARM), s)) for s in styles}

    print(machine())
    print()
    print("Default job (L-BFGS 100, AdaIN start, margin 16), coarse to fine unless `single`:")
    print()
    print(
        "| run | style | output | schedule (side: iterations) | AdaIN (s) | per scale: s (s/it) | total (s) "
        "| idle (MB) | peak (MB) | peak − idle (MB) | held-out style distance at 512 | × 512 result "
        "| per layer (" + ", ".join(HELD_OUT) + ") | × 512 result, shrunk " + " / ".join(others) + " |"
    )
    print("|---|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|")
    for name, run in runs.items():
        reference = next(
            (
                scores[n]
                for n, r in runs.items()
                if r["size"] == ARM
                and r["style"] == run["style"]
                and not r["single"]
                and r["iterations"] == 100
                and r["share"] == 0.5
                and not r.get("enlarge_finer")
            ),
            float("nan"),
        )
        plan = (
            ", ".join(f"{s}: {i}" for s, i in run["plan"]) or f"{run['size']}: {run['iterations']} (single)"
        )
        per = ", ".join(
            f"{s['seconds']:.0f}" + (f" ({s['per_iteration']:.2f})" if s["per_iteration"] else "")
            for s in run["scales"]
        )
        height, width = run["shape"]
        style = run["style"].removesuffix(".jpg")
        variant = [f"finer share {run['share']}"] if run["share"] != 0.5 else []
        variant += [f"min finer {run['min_finer']}"] if run.get("min_finer", 10) != 10 else []
        variant += ["finer style enlarged"] if run.get("enlarge_finer") else []
        variant += [f"levels {levels(run):g}"] if run["size"] > ARM else []
        filtered = run.get("level_filter", "bilinear")  # the filter before it was recorded
        variant += [f"levels shrunk {filtered}"] if run["size"] > ARM and levels(run) else []
        variant += [f"above the base {' '.join(run['finer'])}"] if run.get("finer") else []
        variant += [f"{run['pooling']} pooling"] if run.get("pooling", "max") != "max" else []
        label = ", ".join([run["precision"], *variant])
        idle, peak = run["idle_mb"], run["peak_mb"]
        print(
            f"| {name} ({label}) | {style} | {width}×{height} | {plan} | {run['adain']:.1f} "
            f"| {per} | {run['seconds']:.0f} | {idle:.0f} | {peak:.0f} | {peak - idle:.0f} "
            f"| {scores[name]:.4f} | {scores[name] / reference:.2f} "
            f"| {', '.join(f'{x:.3f}' for x in layers[name])} "
            f"| {' / '.join(f'{x / reference:.2f}' for x in shrinks[name])} |"
        )
    print()
    for style, value in photo.items():
        print(f"unstyled photo at 512 against {style}: held-out style distance {value:.4f}")
    print(f"uptime now: {uptime()}")

    if "default_2048" not in runs:
        print("no default_2048 run: no sheet, no crop")
        return
    names = ("default_2048", "bilinear_2048", "levels0_2048", "single_2048", "variant_2048", "style2_2048")
    cells = [n for n in names if n in runs]
    captions = {
        "default_2048": "2048 px, coarse to fine, levels {levels:g}",
        "bilinear_2048": "2048 px, coarse to fine, levels {levels:g} shrunk bilinear",
        "levels0_2048": "2048 px, coarse to fine, levels {levels:g}",
        "single_2048": "2048 px, single scale, same time",
        "variant_2048": "2048 px, {iterations} at 512, finer x{share}",
        "style2_2048": "2048 px, coarse to fine, levels {levels:g}",
    }
    tiles = [
        tile(
            Image.fromarray(to_uint8(pictures[n])),
            640,
            f"{runs[n]['style'].removesuffix('.jpg')}, "
            + captions[n].format(
                share=runs[n]["share"], iterations=runs[n]["iterations"], levels=levels(runs[n])
            )
            + f", {runs[n]['seconds']:.0f} s",
        )
        for n in cells
    ]
    columns = 2
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * tiles[0].width, rows * tiles[0].height), "white")
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % columns) * t.width, (i // columns) * t.height))
    sheet.save(SHEET, quality=85)
    x, y = args.crop
    crop = Image.fromarray(to_uint8(pictures["default_2048"])).crop((x, y, x + 512, y + 512))
    crop.save(CROP, quality=90)
    for name in names[1:]:  # to look at, not committed
        if name in pictures:
            Image.fromarray(to_uint8(pictures[name])).crop((x, y, x + 512, y + 512)).save(
                args.out / f"crop_{name}.png"
            )
    print(
        f"saved {SHEET.name} ({SHEET.stat().st_size / 1e6:.2f} MB), "
        f"{CROP.name} ({CROP.stat().st_size / 1e6:.2f} MB)"
    )


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parse_args(argv)
    need(
        args.images,
        [args.content, *(getattr(args, name) for name in ("style", "style2") if hasattr(args, name))],
    )
    args.out.mkdir(parents=True, exist_ok=True)
    {"job": job, "all": every, "report": report}[args.part](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
