"""Gram against sliced Wasserstein style loss, with and without iterate averaging (issue 25).

    python bench/bench_style_loss.py [--images DIR] [--out /tmp/styleloss] scale [--size 512]
    python bench/bench_style_loss.py ... run --size 512 [--pairs C:S ...] [--losses gram sliced]
        [--decays 0.9 0.99] [--average-decay D]
    python bench/bench_style_loss.py ... redraw [--size 256] [--pairs C:S ...] [--every 32]
    python bench/bench_style_loss.py ... timing [--size 512] [--rounds 4] [--losses gram sliced mixed2]
    python bench/bench_style_loss.py ... report [--crop 256]

The bot's job throughout: L-BFGS (its 2 Adam steps first) 100 from the AdaIN image, margin 16, the style
at the painting's width (brush medium), float32, the real weights, coarse to fine above 512 px.

  scale   the weighted Gram style term and the unweighted sliced term (engine.sliced.SCALE left out) at
          the content image and at the AdaIN start, per pair: the ratio sets engine.sliced.SCALE so that
          the default style_weight starts the descent with the same style term as the Gram loss.
  run     per pair and loss, the job in this process, one after the other: OUT/SIZE_PAIR_LOSS.png and
          .json (seconds, losses, held-out distance). Single-scale jobs preview every iteration, and the
          moving average of the start and those previews with each of `--decays` is saved too
          (…_LOSS_avgD.png): the same sum engine.descent.averaged forms from the same images (L-BFGS's
          lowest-loss image after every evaluation), so one run gives both. `--average-decay` sets the
          engine's own StyleParams.average_decay instead (for coarse to fine, where each scale starts
          from the previous scale's average).
  redraw  sliced, directions fixed for the whole run (the engine) against directions redrawn every
          `--every` evaluations with L-BFGS restarted (its history reset) from the best image, as the
          reference code does after every 64-step L-BFGS call. Both are scored on the same 8 independent
          sets of directions (the sliced objective's expectation, which neither fitted), and held out.
  timing  seconds per evaluation (loss and gradient) of each of `--losses` (gram sliced) at `--size`,
          alternated `--rounds` times in this process so that all see the same load; medians.
  report  the table for bench/notes/style-loss.md and OUT/sheet.png: per pair, the runs side by side,
          whole and a 100 % crop of the centre.

Held-out style distance: bench/bench_big.py's HeldOut (Grams at VGG-19 layers the objective does not use,
relu1_2 relu2_2 relu3_3 relu4_3, the result shrunk to 512 px). It is a Gram distance, so it favours the
Gram loss's own kind of match: read it as "no worse", not as the sliced loss's score.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_big import HeldOut, rss_mb  # noqa: E402
from bench.bench_ray import uptime  # noqa: E402
from bench.images import IMAGES  # noqa: E402

PAIRS = ("tubingen:starry_night", "golden_gate:the_scream")
MARGIN = 16  # the bot's


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=Path, default=IMAGES)
    p.add_argument("--out", type=Path, default=Path("/tmp/styleloss"))
    parts = p.add_subparsers(dest="part", required=True)
    scale = parts.add_parser("scale")
    scale.add_argument("--size", type=int, default=512)
    scale.add_argument("--pairs", nargs="+", default=[*PAIRS, "hoovertowernight:woman-with-hat-matisse"])
    run = parts.add_parser("run")
    run.add_argument("--size", type=int, required=True)
    run.add_argument("--pairs", nargs="+", default=list(PAIRS))
    run.add_argument("--losses", nargs="+", default=["gram", "sliced"])
    run.add_argument("--decays", type=float, nargs="*", default=[0.9, 0.99])
    run.add_argument("--average-decay", type=float, default=0.0)
    redraw = parts.add_parser("redraw")
    redraw.add_argument("--size", type=int, default=256)
    redraw.add_argument("--pairs", nargs="+", default=list(PAIRS))
    redraw.add_argument("--every", type=int, default=32)
    redraw.add_argument("--iterations", type=int, default=100)
    timing = parts.add_parser("timing")
    timing.add_argument("--size", type=int, default=512)
    timing.add_argument("--rounds", type=int, default=4)
    timing.add_argument("--losses", nargs="+", default=["gram", "sliced"])
    report = parts.add_parser("report")
    report.add_argument("--crop", type=int, default=256)
    return p.parse_args(argv)


def job_params(size: int, loss: str, iterations: int = 100, **more: Any) -> Any:
    """The bot's job at `size` with `loss`: "gram", "sliced", or "mixedK", sliced with the shallowest K
    style layers by Gram (StyleParams.gram_layers)."""
    from engine.params import StyleParams

    if loss.startswith("mixed"):
        loss, more = "sliced", {**more, "gram_layers": int(loss.removeprefix("mixed"))}
    return StyleParams(
        iterations=iterations,
        max_size=size,
        optimizer="lbfgs",
        initial="adain",
        margin=MARGIN,
        style_scales=(1.0,),
        precision="float32",
        stop_tolerance=0.0,
        style_loss=loss,  # type: ignore[arg-type]
        seed=0,
        **more,
    )


def load(args: argparse.Namespace, pair: str) -> tuple[Any, Any]:
    from engine.images import load_image

    content_name, style_name = pair.split(":")
    return load_image(args.images / f"{content_name}.jpg"), load_image(args.images / f"{style_name}.jpg")


def enlarged(content: Any, size: int) -> Any:
    """`content` enlarged (Lanczos, the engine's resize) to `size` on its long side when smaller: the engine
    only shrinks, and the shared photos are at most 1024 px, so a 2048-px job needs its content enlarged
    (as bench/bench_big.py does; the painting then has no more photographic detail than a 1024 one)."""
    from engine.images import resize

    factor = size / max(content.shape[:2])
    if factor <= 1:
        return content
    return resize(content, (round(content.shape[0] * factor), round(content.shape[1] * factor)))


def models() -> tuple[Any, Any]:
    from engine.adain import AdaIN
    from engine.vgg import VGG19
    from engine.weights import load_decoder, load_vgg

    weights = load_vgg(None)
    return VGG19(weights), AdaIN(weights, load_decoder())


def scale(args: argparse.Namespace) -> None:
    import numpy as np
    import tensorflow as tf

    import engine.sliced
    from engine.adain import initial_from_adain
    from engine.objective import Objective
    from engine.stylize import prepare

    network, model = models()
    ratios = []
    for pair in args.pairs:
        content, style = load(args, pair)
        gram_params = job_params(args.size, "gram")
        sized, styles = prepare(content, [style], gram_params)
        start = initial_from_adain(model, content, [style], gram_params)
        parts = {}
        for loss in ("gram", "sliced"):
            objective = Objective(network, sized, styles, job_params(args.size, loss))
            for name, image in (("content", sized), ("adain", start)):
                values = objective(tf.constant(network.preprocess(image)))
                parts[loss, name] = [float(v) for v in values]
        for name in ("content", "adain"):
            gram_style, sliced_style = parts["gram", name][1], parts["sliced", name][1] / engine.sliced.SCALE
            ratios.append(gram_style / sliced_style)
            print(
                f"{pair} at {name}: content {parts['gram', name][0]:.4g}, gram style {gram_style:.4g}, "
                f"sliced style (unscaled) {sliced_style:.4g}, ratio {gram_style / sliced_style:.4g}"
            )
    print(f"geometric mean ratio {float(np.exp(np.mean(np.log(ratios)))):.4g}; {uptime()}")


def run(args: argparse.Namespace) -> None:
    import numpy as np

    from engine.adain import initial_from_adain
    from engine.images import resize, save_image
    from engine.stylize import iterate

    network, model = models()
    args.out.mkdir(parents=True, exist_ok=True)
    for pair in args.pairs:
        content, style = load(args, pair)
        content = enlarged(content, args.size)
        held_out = HeldOut(network, content, style)
        for loss in args.losses:
            params = job_params(args.size, loss, average_decay=args.average_decay)
            single = args.size <= params.multiscale_base and not args.average_decay
            params = params.with_overrides(preview_every=1 if single else 0)
            name = f"{args.size}_{pair.replace(':', '-')}_{loss}" + (
                f"_engineavg{args.average_decay}" if args.average_decay else ""
            )
            load_before = uptime()
            began = time.perf_counter()
            start = initial_from_adain(model, content, [style], params)
            adain_seconds = time.perf_counter() - began
            images: list[Any] = []
            last = None
            scale_seconds: dict[int, float] = {}
            for last in iterate(network, content, [style], params, start=start):
                scale_seconds[last.side] = time.perf_counter() - began
                if single and last.image is not None and last.iteration < last.total:
                    images.append(last.image)
            assert last is not None
            assert last.image is not None
            seconds = time.perf_counter() - began
            save_image(last.image, args.out / f"{name}.png")
            record: dict[str, Any] = {
                "pair": pair,
                "loss": loss,
                "size": args.size,
                "average_decay": args.average_decay,
                "seconds": seconds,
                "adain_seconds": adain_seconds,
                "seconds_at_side": scale_seconds,  # from the start to each scale's last iteration
                "peak_rss_mb": rss_mb(),  # this process's, so run one job per process to read it per job
                "losses": last.losses.__dict__,
                "held_out": held_out.distances(last.image),
                "load_before": load_before,
                "load_after": uptime(),
            }
            if single:
                images.append(last.image)  # the final Progress: the run's best (what `stylize` returns)
                first = resize(start, last.image.shape[:2]).astype(np.float64)
                for decay in args.decays:
                    total, weight = (1 - decay) * first, 1 - decay
                    for image in images:  # one per evaluation
                        total, weight = decay * total + (1 - decay) * image, decay * weight + (1 - decay)
                    average = np.clip(total / weight, 0, 255).astype(np.float32)
                    save_image(average, args.out / f"{name}_avg{decay}.png")
                    record[f"held_out_avg{decay}"] = held_out.distances(average)
            (args.out / f"{name}.json").write_text(json.dumps(record, indent=1))
            print(name, f"{seconds:.0f} s", record["losses"], "held out", record["held_out"], flush=True)


def redraw(args: argparse.Namespace) -> None:
    import numpy as np
    import tensorflow as tf

    from engine.adain import initial_from_adain
    from engine.compiled import compiled
    from engine.descent import lbfgs_after_adam
    from engine.images import save_image
    from engine.objective import Objective
    from engine.stylize import crop, initial_image, pad, prepare

    network, model = models()
    args.out.mkdir(parents=True, exist_ok=True)
    for pair in args.pairs:
        content, style = load(args, pair)
        held_out = HeldOut(network, content, style)
        base = job_params(args.size, "sliced", args.iterations)
        sized, styles = prepare(content, [style], base)
        canvas = pad(sized, MARGIN)
        judges = [Objective(network, canvas, styles, base.with_overrides(seed=1000 + k)) for k in range(8)]
        start = initial_from_adain(model, content, [style], base)
        first = initial_image(network, canvas, base, pad(start, MARGIN))
        for leg, chunk in (("fixed", args.iterations), ("redrawn", args.every)):
            began = time.perf_counter()
            image, done, k = first, 0, 0
            while done < args.iterations:
                n = min(chunk, args.iterations - done)
                objective = Objective(network, canvas, styles, base.with_overrides(seed=k))
                steps = lbfgs_after_adam(
                    compiled(objective), objective, image, n, 2 if done == 0 else 0, base,
                    frozenset(), lambda: False, lambda: False,
                )  # fmt: skip
                while True:
                    try:
                        next(steps)
                    except StopIteration as stop:
                        image = stop.value[0]
                        break
                done, k = done + n, k + 1
            seconds = time.perf_counter() - began
            scores = [float(j(tf.constant(image))[1]) for j in judges]
            pixels = np.clip(network.unprocess(crop(image, MARGIN)), 0, 255)
            save_image(pixels, args.out / f"redraw_{args.size}_{pair.replace(':', '-')}_{leg}.png")
            print(
                f"{pair} {leg} (every {chunk}): style on 8 other direction sets {np.mean(scores):.4g} "
                f"± {np.std(scores):.2g}, held out {np.mean(held_out.distances(pixels)):.4f}, "
                f"{seconds:.0f} s; {uptime()}",
                flush=True,
            )


def timing(args: argparse.Namespace) -> None:
    import statistics

    import tensorflow as tf

    from engine.compiled import compiled
    from engine.objective import Objective
    from engine.stylize import pad, prepare

    network, _ = models()
    content, style = load(args, PAIRS[0])
    content = enlarged(content, args.size)
    runs = {}
    for loss in args.losses:
        params = job_params(args.size, loss)
        sized, styles = prepare(content, [style], params)
        canvas = pad(sized, MARGIN)
        began = time.perf_counter()
        objective = Objective(network, canvas, styles, params)
        targets_seconds = time.perf_counter() - began
        fn = compiled(objective)
        image = tf.constant(network.preprocess(canvas))
        fn.loss_and_grad(image, objective.targets, objective.coefficients)[1].numpy()  # trace
        runs[loss] = (fn, objective, image, [])
        print(f"{loss}: targets {targets_seconds:.1f} s", flush=True)
    for _ in range(args.rounds):
        for fn, objective, image, times in runs.values():
            began = time.perf_counter()
            fn.loss_and_grad(image, objective.targets, objective.coefficients)[1].numpy()
            times.append(time.perf_counter() - began)
    for loss, (*_, times) in runs.items():
        print(f"{loss}: {statistics.median(times):.2f} s per evaluation ({times}); {uptime()}")


def report(args: argparse.Namespace) -> None:
    import numpy as np
    from PIL import Image, ImageDraw

    rows = []
    for path in sorted(args.out.glob("*.json")):
        r = json.loads(path.read_text())
        cells = [("", np.mean(r["held_out"]))] + [
            (k.removeprefix("held_out_"), np.mean(v)) for k, v in r.items() if k.startswith("held_out_avg")
        ]
        for tag, distance in cells:
            print(
                f"| {r['size']} | {r['pair']} | {r['loss']}{' ' + tag if tag else ''} | {distance:.4f} | "
                f"{r['seconds']:.0f} | {r['losses']['content']:.4g} | {r['losses']['style']:.4g} |"
            )
        rows.append(path.stem)
    tiles: dict[str, list[tuple[str, Image.Image]]] = {}
    for path in sorted(args.out.glob("*.png")):
        if not path.stem[0].isdigit():  # sheets, redraw legs
            continue
        cut = max(path.stem.rfind("_gram"), path.stem.rfind("_sliced"))  # SIZE_CONTENT-STYLE | _LOSS…
        tiles.setdefault(path.stem[:cut], []).append((path.stem[cut + 1 :], Image.open(path)))
    c = args.crop
    for key, images in tiles.items():
        width = max(i.width for _, i in images)
        height = max(i.height for _, i in images)
        sheet = Image.new("RGB", (len(images) * (width + 4), height + c + 40), "white")
        draw = ImageDraw.Draw(sheet)
        for n, (label, image) in enumerate(images):
            x = n * (width + 4)
            sheet.paste(image.convert("RGB"), (x, 0))
            left, top = (image.width - c) // 2, (image.height - c) // 2
            sheet.paste(image.crop((left, top, left + c, top + c)).convert("RGB"), (x, height + 4))
            draw.text((x + 2, height + c + 8), label, fill="black")
        sheet.save(args.out / f"sheet_{key}.png")
        print("sheet", args.out / f"sheet_{key}.png")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    {"scale": scale, "run": run, "redraw": redraw, "timing": timing, "report": report}[args.part](args)


if __name__ == "__main__":
    main()
