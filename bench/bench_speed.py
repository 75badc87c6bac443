"""Seconds per Adam iteration: the seed's execution (bench/seed_baseline.py) against our compiled steps.

    flock /tmp/bench.lock python bench/bench_speed.py [--sizes 256 512] [--rounds 6] [--xla-sizes 256]

One process, one content/style pair (tubingen × starry_night, default StyleParams), real weights. For each
long side every variant is built and warmed up (tracing, XLA compilation, first steps), then `--rounds`
rounds each time every variant in turn, so load from other processes hits all alike; the table gives the
median seconds per step. Variants, each one lever against the engine's step:
  seed         tf.compat.v1 graph + Session, kernels as constants, whole network, v1 AdamOptimizer
  ours         the engine's step on a CPU: one tf.function call per step, any height and width (one trace)
  static       the same step traced for this one size
  K steps      K steps in one call (a tf.range loop, no host round trip between steps)
  + relu5_2    content_weight_blend 0.5: relu5_2 computed too, as the seed always does
  + XLA        jit_compile=True, one step per call
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.images import IMAGES, need  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=Path, default=IMAGES)
    p.add_argument("--content", default="tubingen.jpg")
    p.add_argument("--style", default="starry_night.jpg")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    p.add_argument("--rounds", type=int, default=6, help="interleaved rounds over all variants")
    p.add_argument("--steps-per-call", type=int, default=4, help="K of the K-step variant")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--xla-sizes", type=int, nargs="*", default=[256], help="sizes to try XLA at (slow)")
    args_ = p.parse_args(argv)
    need(args_.images, [args_.content, args_.style])
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import numpy as np
    import tensorflow as tf

    from bench.seed_baseline import SeedAdam
    from engine.compiled import Compiled
    from engine.images import load_image
    from engine.objective import Objective
    from engine.params import StyleParams
    from engine.stylize import initial_image, prepare
    from engine.vgg import VGG19
    from engine.weights import load_vgg

    weights = load_vgg(None)
    network = VGG19(weights)
    content_full = load_image(args_.images / args_.content)
    style_full = load_image(args_.images / args_.style)
    load_before = os.getloadavg()

    def ours(params: StyleParams, variant: str) -> Callable[[], float]:
        """A closure that runs some steps and returns the seconds per step."""
        content, styles = prepare(content_full, [style_full], params)
        objective = Objective(network, content, styles, params)
        fn = Compiled(network, objective.structure, jit_compile=variant == "xla")
        step = fn.adam_step
        if variant == "static":  # the same step traced for this one size
            step = tf.function(fn.adam_step.python_function)
        image = tf.constant(initial_image(network, content, params))
        zeros = tf.zeros_like(image)
        state = [(image, zeros, zeros, tf.constant(0.0), image, tf.fill((4,), np.inf))]
        hyper = tf.constant([params.learning_rate, params.beta1, params.beta2, params.epsilon])
        args = (objective.targets, objective.coefficients, hyper)
        k = tf.constant(args_.steps_per_call)

        def run() -> float:
            began = time.perf_counter()
            if variant == "k-steps":
                state[0], values = fn.adam_steps(state[0], k, *args)
                n = k.numpy()
            else:
                state[0], values = step(state[0], *args)
                n = 1
            values.numpy()
            return (time.perf_counter() - began) / n

        return run

    def seed_variant(params: StyleParams) -> Callable[[], float]:
        seed = SeedAdam(weights, content_full, [style_full], params)

        def run() -> float:
            began = time.perf_counter()
            seed.step()
            return time.perf_counter() - began

        return run

    names = {
        "seed": "seed (compat.v1 Session, v1 Adam)",
        "ours": "ours: tf.function, 1 step/call (the engine on a CPU)",
        "static": "ours traced for this size only (static shapes)",
        "k-steps": f"ours, {args_.steps_per_call} steps/call (tf.range loop)",
        "all-layers": "ours + relu5_2 computed (content_weight_blend 0.5)",
        "xla": "ours + XLA (jit_compile), 1 step/call",
    }
    rows: list[tuple[int, str, float]] = []
    for size in args_.sizes:
        params = StyleParams(max_size=size)
        variants = {
            "seed": seed_variant(params),
            "ours": ours(params, "ours"),
            "static": ours(params, "static"),
            "k-steps": ours(params, "k-steps"),
            "all-layers": ours(params.with_overrides(content_weight_blend=0.5), "ours"),
        }
        if size in args_.xla_sizes:
            variants["xla"] = ours(params, "xla")
        for run in variants.values():  # warm-up: tracing, XLA compilation, first steps
            for _ in range(args_.warmup):
                run()
        # Rounds interleave the variants, so a change in the machine's load hits them all alike.
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args_.rounds):
            for name, run in variants.items():
                per_round = 1 if name == "k-steps" else args_.steps_per_call // 2 or 1
                times[name] += [run() for _ in range(per_round)]
        for name, values in times.items():
            rows.append((size, names[name], statistics.median(values)))
            print(f"{size}: {name} {rows[-1][2]:.3f}", file=sys.stderr, flush=True)
    load_after = os.getloadavg()

    print(
        f"Python {platform.python_version()}, TensorFlow {tf.__version__}, numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs, TensorFlow's default threads; {args_.content} × {args_.style}, "
        f"default StyleParams; warm-up {args_.warmup} calls, {args_.rounds} interleaved rounds."
    )
    print()
    print("| long side | variant | s/iter | × seed |")
    print("|---:|---|---:|---:|")
    for size in args_.sizes:
        base = next(s for z, name, s in rows if z == size and name.startswith("seed"))
        for z, name, seconds in rows:
            if z == size:
                print(f"| {size} | {name} | {seconds:.3f} | {seconds / base:.2f} |")
    print()
    print(
        "Load average (1, 5, 15 min) before: {:.2f}, {:.2f}, {:.2f}; after: {:.2f}, {:.2f}, {:.2f}.".format(
            *load_before, *load_after
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
