"""The device L-BFGS against scipy's on the test's style objective, under the numerics of other CPUs.

    python bench/lbfgs_vs_scipy.py run [--seeds 0 1 2] [--evaluations 60] [--marks 30 40 60]
        [--noise 1e-6] [--threads 1 1] [--precision float32]
    python bench/lbfgs_vs_scipy.py all [--seeds 0 1 2 3 4 5 6 7] [--evaluations 60]

The problem is tests/engine/test_lbfgs.py's: the synthetic VGG-19 (channels 4), a smooth 40×56 content
and a 32×32 style, margin 4, after stylize's Adam warm-up. `--seeds` varies the whole synthetic setup at
once: seed k draws the content from smooth_image seed 1 + 2k and the style from 2 + 2k (k = 0..5 are the
test's problems; the start is the content itself, so StyleParams' seed changes nothing). Another CPU's
numerics are imitated by TensorFlow's thread
counts (intra, inter), TF_ENABLE_ONEDNN_OPTS (set in the environment of `run`), the precision, and a
relative noise on every loss and gradient value (each multiplied by 1 + noise·N(0, 1), one stream per
problem shared by both optimisers in turn), which stands for a different summation order.

Neither optimiser's path depends on its budget, so one run of `--evaluations` reads the result of every
smaller budget in `--marks` off its best-so-far: the same number a run of that budget ends with.

  run  one configuration in this process: a JSON line per seed and mark (device and scipy finals, ratio,
       the device run's LbfgsStats at that mark).
  all  every configuration, each in its own process, then a markdown table per mark on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# (label, environment, --threads, extra arguments): the perturbations `all` runs, each in its own process.
CONFIGS: list[tuple[str, dict[str, str], tuple[int, int], list[str]]] = [
    ("as tested (threads 2/2, oneDNN on)", {}, (2, 2), []),
    ("threads 1/1", {}, (1, 1), []),
    ("oneDNN off", {"TF_ENABLE_ONEDNN_OPTS": "0"}, (2, 2), []),
    ("noise 1e-6", {}, (2, 2), ["--noise", "1e-6"]),
    ("noise 1e-5", {}, (2, 2), ["--noise", "1e-5"]),
    ("bfloat16", {}, (2, 2), ["--precision", "bfloat16"]),
]


def perturbed(loss_and_grad: Any, noise: float, rng: Any) -> Any:
    """`loss_and_grad` with every value times 1 + noise·N(0, 1): another order of summation."""
    import tensorflow as tf

    def noisy(image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        values, grad = loss_and_grad(image)
        if not noise:
            return values, grad
        v = values.numpy() * (1 + noise * rng.standard_normal(values.shape))
        g = grad.numpy() * (1 + noise * rng.standard_normal(grad.shape))
        return tf.constant(v, tf.float32), tf.constant(g, tf.float32)

    return noisy


def run(args: argparse.Namespace) -> None:
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads[0])
    tf.config.threading.set_inter_op_parallelism_threads(args.threads[1])

    from engine import lbfgs_scipy
    from engine.lbfgs import LbfgsStats, lbfgs
    from engine.params import StyleParams
    from engine.vgg import VGG19
    from engine.weights import synthetic
    from tests.engine.conftest import smooth_image
    from tests.engine.test_lbfgs import scipy_loss_and_grad, style_problem

    network = VGG19(synthetic(channels=4, seed=0))
    for seed in args.seeds:
        content, style = smooth_image(40, 56, 1 + 2 * seed), smooth_image(32, 32, 2 + 2 * seed)
        params = StyleParams(
            seed=seed, style_weight=1.0, content_weight=1.0, margin=4, max_size=56, precision=args.precision
        )
        loss_and_grad, start, low, high = style_problem(network, content, style, params)
        noisy = perturbed(loss_and_grad, args.noise, np.random.default_rng(seed))
        stats = LbfgsStats()
        snapshots: dict[int, LbfgsStats] = {}
        ours: list[float] = []
        for number, losses, _ in lbfgs(noisy, start, low, high, args.evaluations, stats=stats):
            ours.append(min(losses.total, ours[-1]) if ours else losses.total)
            if number in args.marks:
                snapshots[number] = dataclasses.replace(stats)
        theirs: list[float] = []
        for _, losses, _ in lbfgs_scipy.lbfgs(scipy_loss_and_grad(noisy), start, low, high, args.evaluations):
            theirs.append(min(losses.total, theirs[-1]) if theirs else losses.total)
        first = ours[0]
        for mark in args.marks:
            if mark > len(ours) or mark > len(theirs):
                continue
            print(
                json.dumps(
                    {
                        "seed": seed,
                        "mark": mark,
                        "first": first,
                        "device": ours[mark - 1],
                        "scipy": theirs[mark - 1],
                        "ratio": ours[mark - 1] / theirs[mark - 1],
                        "stats": dataclasses.asdict(snapshots[mark]),
                    }
                ),
                flush=True,
            )


def run_all(args: argparse.Namespace) -> None:
    rows: dict[str, list[dict]] = {}
    for label, env, threads, extra in CONFIGS:
        command = [
            sys.executable,
            __file__,
            "run",
            "--seeds",
            *map(str, args.seeds),
            "--evaluations",
            str(args.evaluations),
            "--marks",
            *map(str, args.marks),
            "--threads",
            *map(str, threads),
            *extra,
        ]
        environment = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", **env}
        done = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
        rows[label] = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        print(f"done: {label}", file=sys.stderr, flush=True)
    for mark in args.marks:
        print(f"\n### {mark} evaluations\n")
        print("| configuration | seed | device | scipy | device / scipy | failures | skipped | resets |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for label, results in rows.items():
            chosen = [r for r in results if r["mark"] == mark]
            for r in chosen:
                s = r["stats"]
                print(
                    f"| {label} | {r['seed']} | {r['device']:.2f} | {r['scipy']:.2f} | {r['ratio']:.3f} "
                    f"| {s['line_search_failures']} | {s['skipped_pairs']} | {s['resets']} |"
                )
            ratios = [r["ratio"] for r in chosen]
            if ratios:
                summary = f"{statistics.median(ratios):.3f}, {max(ratios):.3f}"
                print(f"| {label}: median, max | | | | {summary} | | | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "all"):
        p = sub.add_parser(name)
        p.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
        p.add_argument("--evaluations", type=int, default=60)
        p.add_argument("--marks", type=int, nargs="+", default=[30, 40, 60])
    one = sub.choices["run"]
    one.add_argument("--noise", type=float, default=0.0)
    one.add_argument("--threads", type=int, nargs=2, default=[2, 2])
    one.add_argument("--precision", default="float32", choices=["auto", "float32", "bfloat16"])
    args = parser.parse_args()
    run(args) if args.command == "run" else run_all(args)


if __name__ == "__main__":
    main()
