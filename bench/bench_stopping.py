"""Early stopping (issue 23): how the bot's job converges, and what stopping it early costs and saves.

    python bench/bench_stopping.py [--images DIR] [--out /tmp/stopping] run --size 512 \
        [--pairs tubingen:starry_night ...] [--legs full stopped] [--every 1] [--tolerance T]
    python bench/bench_stopping.py [--images DIR] [--out /tmp/stopping] report [--tolerances ...]

The bot's default job: L-BFGS (its 2 Adam steps first), `--iterations` 100 from the AdaIN image, margin 16,
brush medium (the style at the painting's width), float32 (`--precision`), coarse to fine above 512 px,
the real weights. The images come from bench/images/ (`--images` to use another folder).

  run     per pair, each leg in turn in this process (so their times compare under the same load):
          `full` runs the whole budget (stop_tolerance 0), `stopped` the engine's stopping rule
          (`--tolerance`, default the engine's). Each leg writes OUT/SIZE_PAIR_LEG.json (per iteration: the
          scale, the objective of the evaluated point, the lowest so far in its scale, seconds since the
          start, and every `--every` iterations the held-out style distance of the image the painting would
          be if it ended there) and OUT/SIZE_PAIR_LEG.png. Time spent on the distances is left out of the
          seconds.
  report  tables for bench/notes/early-stopping.md: the stopping rule replayed on the full legs' curves for
          each of `--tolerances` (where it stops, and the objective and distance there against the full
          run's), then full against stopped as run; OUT/sheet.png, full beside stopped per pair.

Held-out style distance: bench/bench_big.py's HeldOut (Grams at VGG-19 layers the objective does not use,
the result shrunk to 512 px); the objective is the engine's, of the image as the scale painted it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_big import HeldOut  # noqa: E402
from bench.bench_ray import uptime  # noqa: E402

IMAGES = REPO / "bench" / "images"
PAIRS = ("tubingen:starry_night", "golden_gate:the_scream", "hoovertowernight:woman-with-hat-matisse")
MARGIN = 16  # the bot's (bot/painting.py)
LEGS = ("full", "stopped")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=Path, default=IMAGES)
    p.add_argument("--out", type=Path, default=Path("/tmp/stopping"))
    parts = p.add_subparsers(dest="part", required=True)
    run = parts.add_parser("run", help="the legs of each pair, in turn, in this process")
    run.add_argument("--size", type=int, required=True)
    run.add_argument("--pairs", nargs="+", default=list(PAIRS), help="CONTENT:STYLE, file stems (.jpg)")
    run.add_argument("--legs", nargs="+", choices=LEGS, default=list(LEGS))
    run.add_argument("--iterations", type=int, default=100)
    run.add_argument("--every", type=int, default=1, help="held-out distance every K iterations (0: final)")
    run.add_argument("--tolerance", type=float, help="stop_tolerance of the stopped leg (default: engine's)")
    run.add_argument(
        "--replay",
        type=float,
        nargs="*",
        default=[],
        help="full leg: also save the image where the rule with each of these tolerances would end the base "
        "scale (OUT/NAME_atT.png; the same run up to there, so the same picture, at no extra cost)",
    )
    run.add_argument("--precision", default="float32", choices=("auto", "float32", "bfloat16"))
    report = parts.add_parser("report", help="tables and the sheet from the saved legs")
    report.add_argument("--tolerances", type=float, nargs="+", default=[0.01, 0.005, 0.002, 0.001])
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    from engine.adain import AdaIN, initial_from_adain
    from engine.images import load_image, save_image
    from engine.params import StyleParams
    from engine.stopping import Plateau
    from engine.stylize import iterate
    from engine.vgg import VGG19
    from engine.weights import load_decoder, load_vgg

    weights = load_vgg(None)
    network, model = VGG19(weights), AdaIN(weights, load_decoder())
    for pair in args.pairs:
        content_name, style_name = pair.split(":")
        content = load_image(args.images / f"{content_name}.jpg")
        style = load_image(args.images / f"{style_name}.jpg")
        held_out = HeldOut(network, content, style)
        for leg in args.legs:
            params = StyleParams(
                iterations=args.iterations,
                max_size=args.size,
                optimizer="lbfgs",
                initial="adain",
                margin=MARGIN,
                style_scales=(1.0,),  # brush medium
                precision=args.precision,
                preview_every=args.every if leg == "full" else 0,
            )
            if leg == "full":
                params = params.with_overrides(stop_tolerance=0.0)
            elif args.tolerance is not None:
                params = params.with_overrides(stop_tolerance=args.tolerance)
            load = uptime()
            began = time.perf_counter()
            start = initial_from_adain(model, content, [style], params)
            measuring = 0.0  # seconds spent on distances, left out of the times
            rows: list[dict[str, Any]] = []
            lowest: dict[int, float] = {}
            replays = {t: Plateau(t) for t in args.replay} if leg == "full" else {}
            replayed: dict[str, int] = {}  # tolerance: the iteration the base scale would end after
            for step in iterate(network, content, [style], params, start=start):
                total = step.losses.total
                lowest[step.scale] = min(lowest.get(step.scale, total), total)
                row: dict[str, Any] = {
                    "iteration": step.iteration,
                    "scale": step.scale,
                    "side": step.side,
                    "objective": total,
                    "lowest": lowest[step.scale],
                    "ran": step.ran,
                    "seconds": time.perf_counter() - began - measuring,
                }
                if step.image is not None and (step.iteration == step.total or args.every):
                    t = time.perf_counter()
                    row["held_out"] = statistics.mean(held_out.distances(step.image))
                    measuring += time.perf_counter() - t
                for tolerance, plateau in replays.items():
                    if step.scale == 1 and step.iteration < step.total and f"{tolerance:g}" not in replayed:
                        plateau.add(total)
                        if plateau() and step.image is not None:
                            replayed[f"{tolerance:g}"] = step.iteration
                            t = time.perf_counter()
                            stem = f"{args.size}_{content_name}_{style_name}_full_at{tolerance:g}"
                            save_image(step.image, args.out / f"{stem}.png")
                            measuring += time.perf_counter() - t
                rows.append(row)
                image, losses = step.image, step.losses
            name = f"{args.size}_{content_name}_{style_name}_{leg}"
            assert image is not None
            save_image(image, args.out / f"{name}.png")
            record = {
                "name": name,
                "size": args.size,
                "content": content_name,
                "style": style_name,
                "leg": leg,
                "stop_tolerance": params.stop_tolerance,
                "precision": args.precision,
                "iterations_run": rows[-1]["ran"],
                "total": rows[-1]["iteration"],
                "seconds": rows[-1]["seconds"],
                "objective": losses.total,
                "held_out": rows[-1]["held_out"],
                "replayed": replayed,
                "uptime_before": load,
                "uptime_after": uptime(),
                "rows": rows,
            }
            (args.out / f"{name}.json").write_text(json.dumps(record))
            print(
                f"{name}: {record['iterations_run']}/{record['total']} iterations, "
                f"{record['seconds']:.1f} s, objective {losses.total:.4g}, "
                f"held-out {record['held_out']:.4f}; {load}",
                flush=True,
            )


def legs(out: Path) -> dict[tuple[int, str, str], dict[str, dict[str, Any]]]:
    """The saved legs: {(size, content, style): {leg: record}}."""
    found: dict[tuple[int, str, str], dict[str, dict[str, Any]]] = {}
    for path in sorted(out.glob("*.json")):
        record = json.loads(path.read_text())
        found.setdefault((record["size"], record["content"], record["style"]), {})[record["leg"]] = record
    return dict(sorted(found.items()))


def replay(rows: list[dict[str, Any]], tolerance: float) -> int:
    """Where the engine's rule (engine.stopping.Plateau) would end a single-scale run with these rows: the
    number of iterations it would run."""
    from engine.stopping import Plateau

    plateau = Plateau(tolerance)
    events = [r for r in rows if r["iteration"] < rows[-1]["iteration"]]  # the last row is the end
    for row in events:
        plateau.add(row["objective"])
        if plateau():
            return plateau.count
    return rows[-1]["iteration"]


def at(rows: list[dict[str, Any]], iteration: int) -> dict[str, Any]:
    """The row of `iteration`, or the last with a held-out distance at or before it."""
    measured = [r for r in rows if "held_out" in r and r["iteration"] <= iteration]
    return measured[-1]


def replayed(full: dict[str, Any], out: Path, tolerance: float) -> dict[str, Any] | None:
    """A full single-scale leg's record as the rule with `tolerance` would have ended it (its image saved
    by `run --replay`; the full leg itself where the rule never fires), or None without those."""
    rows = full["rows"]
    if rows[-1]["scale"] > 1 or "held_out" not in rows[1]:
        return None
    k = replay(rows, tolerance)
    if k == rows[-1]["iteration"]:  # never fires: the stopped painting is the full one
        return {**full, "leg": "replayed, not stopped"}
    image = f"{full['name']}_at{tolerance:g}"
    if not (out / f"{image}.png").exists():
        return None
    row = at(rows, k)
    return {
        "name": image,
        "leg": "replayed",
        "iterations_run": k,
        "seconds": row["seconds"],
        "objective": row["lowest"],
        "held_out": row["held_out"],
        "uptime_before": full["uptime_before"],
    }


def report(args: argparse.Namespace) -> None:
    from PIL import Image

    from bench.bench_precision import machine
    from bench.sheet import tile
    from engine.images import load_image, to_uint8
    from engine.stopping import STOP_TOLERANCE, STOP_WINDOW

    found = legs(args.out)
    print(machine())
    print(f"uptime now: {uptime()}")
    print()
    print(f"The rule replayed on the full runs' curves (single scale; window {STOP_WINDOW} iterations):")
    print()
    print("| size | pair | tolerance | iterations | time | objective vs full | held-out vs full |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for (size, content, style), run in found.items():
        full = run.get("full")
        if full is None or "held_out" not in full["rows"][1] or full["rows"][-1]["scale"] > 1:
            continue
        rows, end = full["rows"], full["rows"][-1]
        for tolerance in args.tolerances:
            k = replay(rows, tolerance)
            row = at(rows, k)
            print(
                f"| {size} | {content} × {style} | {tolerance:g} | {k}/{end['iteration']} "
                f"| {row['seconds']:.0f}/{end['seconds']:.0f} s "
                f"| {row['lowest'] / end['objective'] - 1:+.2%} "
                f"| {row['held_out'] / end['held_out'] - 1:+.2%} |"
            )
    print()
    print(
        f"Full against stopped (tolerance {STOP_TOLERANCE:g}): `run`, the stopped leg run after the full one "
        "in the same process; `replayed`, the full run's own image and time where the rule ends it (single "
        "scale, so the same painting as a stopped run):"
    )
    print()
    print(
        "| size | pair | stopped | iterations (full / stopped) | seconds (full / stopped) | time saved "
        "| objective (full / stopped) | Δ | held-out (full / stopped) | Δ | load before (full / stopped) |"
    )
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    tiles = []
    for (size, content, style), run in found.items():
        if "full" not in run:
            continue
        full = run["full"]
        stopped = run.get("stopped") or replayed(full, args.out, STOP_TOLERANCE)
        if stopped is None:
            continue
        loads = " / ".join(
            r["uptime_before"].split("load average: ")[-1].split(",")[0] for r in (full, stopped)
        )
        print(
            f"| {size} | {content} × {style} | {stopped['leg']} "
            f"| {full['iterations_run']} / {stopped['iterations_run']} "
            f"| {full['seconds']:.0f} / {stopped['seconds']:.0f} "
            f"| {1 - stopped['seconds'] / full['seconds']:.0%} "
            f"| {full['objective']:.4g} / {stopped['objective']:.4g} "
            f"| {stopped['objective'] / full['objective'] - 1:+.2%} "
            f"| {full['held_out']:.4f} / {stopped['held_out']:.4f} "
            f"| {stopped['held_out'] / full['held_out'] - 1:+.2%} | {loads} |"
        )
        for record in (full, stopped):
            picture = Image.fromarray(to_uint8(load_image(args.out / f"{record['name']}.png")))
            caption = (
                f"{size} px {content} x {style}: {record['leg']}, {record['iterations_run']} it, "
                f"objective {record['objective']:.4g}, held-out {record['held_out']:.4f}"
            )
            tiles.append(tile(picture, 512, caption))
    if tiles:
        sheet = Image.new("RGB", (2 * tiles[0].width, len(tiles) // 2 * tiles[0].height), "white")
        for i, t in enumerate(tiles):
            sheet.paste(t, ((i % 2) * t.width, (i // 2) * t.height))
        sheet.save(args.out / "sheet.png")
        print()
        print(f"sheet: {args.out / 'sheet.png'}")


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    {"run": run, "report": report}[args.part](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
