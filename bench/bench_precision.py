"""bfloat16 convolutions and the device L-BFGS against float32 and scipy's L-BFGS-B (issue 13).

    flock /tmp/bench.lock python bench/bench_precision.py speed [--sizes 256 512 1024] [--rounds 5 5 2]
    flock /tmp/bench.lock python bench/bench_precision.py speed --sizes 512 --rounds 5 --no-amx
    flock /tmp/bench.lock python bench/bench_precision.py lbfgs [--evaluations 12] [--rounds 3]
    flock /tmp/bench.lock python bench/bench_precision.py job [--before a32eeae] [--rounds 3]
    flock /tmp/bench.lock python bench/bench_precision.py quality [--adam 300] [--lbfgs 100]

tubingen × starry_night, real weights (engine.weights.load_vgg(None)). Each table is one process, and
every variant runs in turn each round, so a change in the machine's load hits all alike; medians.
  speed    seconds per Adam step: the seed (bench/seed_baseline.py), ours in float32, ours in bfloat16.
           --no-amx sets ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16, so oneDNN leaves AMX unused: an emulation,
           on this CPU, of one with AVX512-BF16 only.
  lbfgs    one L-BFGS evaluation at 512 px with the bot's 16 px margin: the compiled loss and gradient in
           each precision, and each driver's bookkeeping per evaluation, i.e. (wall time of N evaluations
           through engine.lbfgs_scipy or engine.lbfgs) − (time inside the compiled loss-and-gradient calls).
  job      the bot's default job (512 px, L-BFGS 100 with its 2 Adam steps, margin 16, from the AdaIN image)
           as a worker runs it: AdaIN start image + optimisation, weights already loaded. "before" runs the
           engine of commit --before (float32, scipy's L-BFGS-B) from a git worktree, "after" this tree with
           precision "auto"; each in its own worker process, jobs alternating between them. Each worker's
           first job (tracing included) is reported apart from the warm ones.
  quality  Adam and L-BFGS at 512 px from the content image (margin 16, seed 0) in float32 and bfloat16,
           each result scored by the float32 objective on the unpadded content; L-BFGS's LbfgsStats; a
           side-by-side picture float32 | bfloat16 | difference.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_ray import uptime  # noqa: E402
from bench.images import IMAGES, need  # noqa: E402

BEFORE_TREE = Path("/tmp/before")
MARGIN = 16  # the bot's (bot/requests.py)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=Path, default=IMAGES)
    p.add_argument("--content", default="tubingen.jpg")
    p.add_argument("--style", default="starry_night.jpg")
    parts = p.add_subparsers(dest="part", required=True)
    speed = parts.add_parser("speed", help="seconds per Adam step")
    speed.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    speed.add_argument("--rounds", type=int, nargs="+", default=[5, 5, 2], help="per size (last repeats)")
    speed.add_argument("--no-amx", action="store_true", help="ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16")
    speed.add_argument("--steps", type=int, default=2, help="steps per variant per round (1 at ≥ 1024 px)")
    lbfgs = parts.add_parser("lbfgs", help="one L-BFGS evaluation and each driver's bookkeeping")
    lbfgs.add_argument("--evaluations", type=int, default=12, help="per driver run")
    lbfgs.add_argument("--rounds", type=int, default=3)
    job = parts.add_parser("job", help="the bot's default job, before against after")
    job.add_argument("--before", default="a32eeae", help="commit of the engine before the change")
    job.add_argument("--rounds", type=int, default=3, help="warm jobs per variant")
    worker = parts.add_parser("job-worker", help="(internal) runs jobs for `job`, one per line on stdin")
    worker.add_argument("--tree", type=Path, required=True)
    quality = parts.add_parser("quality", help="float32 against bfloat16 results")
    quality.add_argument("--adam", type=int, default=300, help="Adam iterations (0: skip)")
    quality.add_argument("--lbfgs", type=int, default=100, help="L-BFGS iterations")
    quality.add_argument("--picture", type=Path, default=REPO / "docs/images/benchmarks/precision_512.jpg")
    return p.parse_args(argv)


def machine() -> str:
    """The lines every table is printed under: CPU, its bfloat16 flags, versions, oneDNN's ISA cap."""
    import numpy as np
    import tensorflow as tf

    from engine.precision import cpu_flags

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    flags = sorted(cpu_flags() & {"amx_bf16", "amx_tile", "avx512_bf16", "avx512f"})
    return (
        f"{model}, {os.cpu_count()} CPUs, flags {' '.join(flags)}; Python {platform.python_version()}, "
        f"TensorFlow {tf.__version__}, numpy {np.__version__}; "
        f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}"
    )


def speed(args: argparse.Namespace) -> None:
    import tensorflow as tf

    from bench.seed_baseline import SeedAdam
    from engine.compiled import compiled
    from engine.images import load_image
    from engine.objective import Objective
    from engine.params import StyleParams
    from engine.stylize import initial_image, prepare
    from engine.vgg import VGG19
    from engine.weights import load_vgg

    weights = load_vgg(None)
    network = VGG19(weights)
    content_full, style_full = load_image(args.images / args.content), load_image(args.images / args.style)
    before = uptime()

    def ours(params: StyleParams) -> Callable[[], float]:
        """One engine Adam step per call (as the engine on a CPU); returns its seconds."""
        content, styles = prepare(content_full, [style_full], params)
        objective = Objective(network, content, styles, params)
        fn = compiled(objective)
        image = tf.constant(initial_image(network, content, params))
        zeros = tf.zeros_like(image)
        state = [(image, zeros, zeros, tf.constant(0.0), image, tf.fill((4,), float("inf")))]
        hyper = tf.constant([params.learning_rate, params.beta1, params.beta2, params.epsilon])

        def run() -> float:
            began = time.perf_counter()
            state[0], values = fn.adam_step(state[0], objective.targets, objective.coefficients, hyper)
            values.numpy()
            return time.perf_counter() - began

        return run

    def seed(params: StyleParams) -> Callable[[], float]:
        model = SeedAdam(weights, content_full, [style_full], params)

        def run() -> float:
            began = time.perf_counter()
            model.step()
            return time.perf_counter() - began

        return run

    print(machine())
    print()
    print(
        "| long side | seed s/iter | float32 s/iter | bfloat16 s/iter | float32 × seed | bfloat16 × seed "
        "| bfloat16 × float32 | rounds |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for index, size in enumerate(args.sizes):
        rounds = args.rounds[min(index, len(args.rounds) - 1)]
        steps = 1 if size >= 1024 else args.steps
        params = StyleParams(max_size=size)
        variants = {
            "seed": seed(params),
            "float32": ours(params.with_overrides(precision="float32")),
            "bfloat16": ours(params.with_overrides(precision="bfloat16")),
        }
        for run in variants.values():  # tracing, graph set-up, oneDNN's first kernels
            run()
            run()
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(rounds):
            for name, run in variants.items():
                times[name] += [run() for _ in range(steps)]
        s, f, b = (statistics.median(times[name]) for name in variants)
        print(
            f"| {size} | {s:.3f} | {f:.3f} | {b:.3f} | {f / s:.2f} | {b / s:.2f} | {b / f:.2f} "
            f"| {rounds} × {steps} |",
            flush=True,
        )
    print()
    print(f"uptime before: {before}\nuptime after:  {uptime()}")


def lbfgs_part(args: argparse.Namespace) -> None:
    import numpy as np
    import tensorflow as tf

    from engine import lbfgs, lbfgs_scipy
    from engine.compiled import Compiled, compiled
    from engine.images import load_image
    from engine.objective import Objective
    from engine.params import StyleParams
    from engine.stylize import initial_image, pad, prepare
    from engine.vgg import VGG19
    from engine.weights import load_vgg

    network = VGG19(load_vgg(None))
    params = StyleParams(max_size=512, margin=MARGIN, optimizer="lbfgs")
    content, styles = prepare(
        load_image(args.images / args.content), [load_image(args.images / args.style)], params
    )
    canvas = pad(content, MARGIN)
    start = initial_image(network, canvas, params)  # (1, 416, 544, 3) for tubingen
    low, high = -network.mean_pixel, 255.0 - network.mean_pixel
    precisions = ("float32", "bfloat16")
    objectives = {
        p: Objective(network, canvas, styles, params.with_overrides(precision=p)) for p in precisions
    }
    functions: dict[str, Compiled] = {p: compiled(o) for p, o in objectives.items()}
    before = uptime()

    def bare(p: str) -> float:
        o, image = objectives[p], tf.constant(start)
        began = time.perf_counter()
        functions[p].loss_and_grad(image, o.targets, o.coefficients)  # eager on a CPU: returns when done
        return time.perf_counter() - began

    def driven(p: str, driver: str, n: int) -> tuple[float, float]:
        """N evaluations through `driver`: (seconds per evaluation outside the loss, inside it)."""
        o, fn, inside, count = objectives[p], functions[p], [0.0], 0

        def timed(image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            began = time.perf_counter()
            out = fn.loss_and_grad(image, o.targets, o.coefficients)
            inside[0] += time.perf_counter() - began
            return out

        def host(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # as a32eeae's _numpy_loss_and_grad
            values, grad = timed(tf.constant(image))
            return values.numpy().astype(np.float64), grad.numpy().astype(np.float64)

        began = time.perf_counter()
        if driver == "scipy":
            events = lbfgs_scipy.lbfgs(host, start, low, high, n)
        else:
            events = lbfgs.lbfgs(timed, start, low, high, n)
        for _ in events:
            count += 1
        wall = time.perf_counter() - began
        return (wall - inside[0]) / count, inside[0] / count

    runs = [(p, d) for p in precisions for d in ("scipy", "device")]
    for p in precisions:
        bare(p)
    for p, d in runs:  # threads, tracing of the device L-BFGS's small functions
        driven(p, d, 3)
    loss: dict[str, list[float]] = {p: [] for p in precisions}
    outside: dict[tuple[str, str], list[float]] = {r: [] for r in runs}
    inner: dict[tuple[str, str], list[float]] = {r: [] for r in runs}
    for _ in range(args.rounds):
        for p in precisions:
            loss[p] += [bare(p) for _ in range(3)]
        for r in runs:
            o, i = driven(*r, args.evaluations)
            outside[r].append(o)
            inner[r].append(i)

    print(machine())
    print(
        f"canvas {canvas.shape[1]}×{canvas.shape[0]} (512 px + {MARGIN} px margin); {args.rounds} rounds of "
        f"3 bare calls per precision and {args.evaluations} evaluations per driver run"
    )
    print()
    print(
        "| precision | loss + gradient (s) | driver | bookkeeping per evaluation (s) "
        "| loss + gradient inside the driver (s) | bookkeeping ÷ loss + gradient |"
    )
    print("|---|---:|---|---:|---:|---:|")
    for p, d in runs:
        o, i = statistics.median(outside[(p, d)]), statistics.median(inner[(p, d)])
        name = "scipy L-BFGS-B (float64, host)" if d == "scipy" else "device L-BFGS (float32)"
        print(f"| {p} | {statistics.median(loss[p]):.3f} | {name} | {o:.3f} | {i:.3f} | {o / i:.0%} |")
    print()
    print(f"uptime before: {before}\nuptime after:  {uptime()}")


def job_worker(args: argparse.Namespace) -> None:
    """Jobs for `job`: one per line on stdin, one JSON line per job on stdout."""
    sys.path.insert(0, str(args.tree))
    import numpy as np
    import tensorflow as tf

    import engine
    from engine.adain import AdaIN, initial_from_adain
    from engine.images import load_image
    from engine.objective import Objective
    from engine.params import StyleParams
    from engine.stylize import prepare, stylize
    from engine.vgg import VGG19
    from engine.weights import load_decoder, load_vgg

    if not Path(engine.__file__).resolve().is_relative_to(args.tree.resolve()):
        raise SystemExit(f"engine imported from {engine.__file__}, not from {args.tree}")
    weights = load_vgg(None)
    network, model = VGG19(weights), AdaIN(weights, load_decoder())
    content, style = load_image(args.images / args.content), load_image(args.images / args.style)
    params = StyleParams(iterations=100, max_size=512, optimizer="lbfgs", initial="adain", margin=MARGIN)
    exact = params.with_overrides(precision="float32") if hasattr(params, "precision") else params
    scorer = Objective(network, *prepare(content, [style], exact), exact)  # float32, no margin
    precision = getattr(params, "precision", "float32 (no setting)")
    print(json.dumps({"engine": engine.__file__, "precision": precision}), flush=True)
    for _ in sys.stdin:
        began = time.perf_counter()
        start = initial_from_adain(model, content, [style], params)
        adain = time.perf_counter() - began
        result = stylize(network, content, [style], params, start=start)
        seconds = time.perf_counter() - began
        parts = scorer(tf.constant(network.preprocess(result.image)))
        score = float(np.sum([float(x) for x in parts]))
        print(json.dumps({"seconds": seconds, "adain": adain, "score": score}), flush=True)


def job(args: argparse.Namespace) -> None:
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(BEFORE_TREE), args.before],
        check=True,
        capture_output=True,
    )
    workers: dict[str, subprocess.Popen[str]] = {}
    try:
        for name, tree in (("before", BEFORE_TREE), ("after", REPO)):
            workers[name] = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--images",
                    str(args.images),
                    "--content",
                    args.content,
                    "--style",
                    args.style,
                    "job-worker",
                    "--tree",
                    str(tree),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        ready = {}
        for name, w in workers.items():  # loaded one after the other: weight loading is not timed
            assert w.stdout is not None
            ready[name] = json.loads(w.stdout.readline())
        before = uptime()
        results: dict[str, list[dict[str, float]]] = {name: [] for name in workers}

        def run(name: str) -> None:
            w = workers[name]
            assert w.stdin is not None
            assert w.stdout is not None
            w.stdin.write("run\n")
            w.stdin.flush()
            results[name].append(json.loads(w.stdout.readline()))
            print(name, results[name][-1], file=sys.stderr, flush=True)

        for _ in range(args.rounds + 1):  # the first round is each worker's first job
            for name in workers:
                run(name)
        after_load = uptime()
    finally:
        for w in workers.values():
            if w.stdin is not None:
                w.stdin.close()
            w.wait()
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(BEFORE_TREE)], check=True
        )

    print(machine())
    for name, info in ready.items():
        print(f"{name}: engine {info['engine']}, precision {info['precision']}")
    print()
    print(
        "| variant | first job (s) | warm jobs (s) | warm median (s) | of which AdaIN (s) "
        "| float32 objective of the result |"
    )
    print("|---|---:|---|---:|---:|---|")
    warm = {}
    for name, rows in results.items():
        warm[name] = statistics.median(r["seconds"] for r in rows[1:])
        times = ", ".join(f"{r['seconds']:.1f}" for r in rows[1:])
        scores = ", ".join(f"{r['score']:.1f}" for r in rows)
        adain = statistics.median(r["adain"] for r in rows[1:])
        print(f"| {name} | {rows[0]['seconds']:.1f} | {times} | {warm[name]:.1f} | {adain:.2f} | {scores} |")
    first = {name: rows[0]["seconds"] for name, rows in results.items()}
    print()
    print(
        f"after ÷ before: warm {warm['after'] / warm['before']:.2f}, first job "
        f"{first['after'] / first['before']:.2f}"
    )
    print(f"uptime before: {before}\nuptime after:  {after_load}")


class _StatsLog(logging.Handler):
    """Keeps the LbfgsStats that engine.stylize logs at DEBUG after every L-BFGS run."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.stats: list[Any] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("L-BFGS") and isinstance(record.args, tuple):
            self.stats.append(record.args[0])


def quality(args: argparse.Namespace) -> None:
    import numpy as np
    import tensorflow as tf
    from PIL import Image

    from bench.sheet import tile
    from engine.images import load_image, to_uint8
    from engine.objective import Objective
    from engine.params import Optimizer, StyleParams
    from engine.stylize import prepare, stylize
    from engine.vgg import VGG19
    from engine.weights import load_vgg

    network = VGG19(load_vgg(None))
    content, style = load_image(args.images / args.content), load_image(args.images / args.style)
    exact = StyleParams(max_size=512, precision="float32")
    scorer = Objective(network, *prepare(content, [style], exact), exact)
    log = _StatsLog()
    logger = logging.getLogger("engine.stylize")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(log)
    before = uptime()
    methods: list[tuple[Optimizer, int]] = [("lbfgs", args.lbfgs)] + (
        [("adam", args.adam)] if args.adam else []
    )
    rows: list[tuple[str, int, str, float, float, Any]] = []
    pictures: dict[tuple[str, str], np.ndarray] = {}
    for optimizer, iterations in methods:
        for precision in ("float32", "bfloat16"):
            params = StyleParams(
                max_size=512,
                iterations=iterations,
                optimizer=optimizer,
                margin=MARGIN,
                seed=0,
                precision=precision,
            )
            count = len(log.stats)
            result = stylize(network, content, [style], params)
            score = float(np.sum([float(x) for x in scorer(tf.constant(network.preprocess(result.image)))]))
            stats = log.stats[-1] if len(log.stats) > count else None
            rows.append((optimizer, iterations, precision, score, result.seconds, stats))
            pictures[(optimizer, precision)] = result.image
            print(rows[-1], file=sys.stderr, flush=True)

    print(machine())
    print()
    print(
        "| optimiser | precision | float32 objective | × float32 run | seconds "
        "| L-BFGS evaluations, iterations, line-search failures, resets, skipped pairs |"
    )
    print("|---|---|---:|---:|---:|---|")
    for method, iterations, precision, score, seconds, stats in rows:
        reference = next(r[3] for r in rows if r[0] == method and r[2] == "float32")
        counters = (
            ""
            if stats is None
            else (
                f"{stats.evaluations}, {stats.iterations}, {stats.line_search_failures}, {stats.resets}, "
                f"{stats.skipped_pairs}"
            )
        )
        print(
            f"| {method} {iterations} | {precision} | {score:.2f} | {score / reference:.3f} "
            f"| {seconds:.0f} | {counters} |"
        )
    print()
    print(f"uptime before: {before}\nuptime after:  {uptime()}")

    lines = []
    for optimizer, iterations in methods:
        a, b = pictures[(optimizer, "float32")], pictures[(optimizer, "bfloat16")]
        difference = np.clip(np.abs(a - b) * 4.0, 0.0, 255.0)
        cells = [(a, "float32"), (b, "bfloat16"), (difference, "|float32 - bfloat16| x 4")]
        tiles = [tile(Image.fromarray(to_uint8(x)), 512, f"{optimizer} {iterations}, {c}") for x, c in cells]
        line = Image.new("RGB", (sum(t.width for t in tiles), tiles[0].height), "white")
        for i, t in enumerate(tiles):
            line.paste(t, (i * t.width, 0))
        lines.append(line)
    sheet = Image.new("RGB", (lines[0].width, sum(line.height for line in lines)), "white")
    for i, line in enumerate(lines):
        sheet.paste(line, (0, i * line.height))
    sheet.save(args.picture, quality=88)
    print(
        f"saved {args.picture} ({args.picture.stat().st_size / 1e6:.2f} MB); mean |difference| per channel: "
        + ", ".join(
            f"{o} {np.mean(np.abs(pictures[(o, 'float32')] - pictures[(o, 'bfloat16')])):.2f}"
            for o, _ in methods
        )
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    need(args.images, [args.content, args.style])
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if getattr(args, "no_amx", False):  # read by oneDNN when TensorFlow first runs a kernel
        os.environ["ONEDNN_MAX_CPU_ISA"] = "AVX512_CORE_BF16"
    parts = {"speed": speed, "lbfgs": lbfgs_part, "job": job, "job-worker": job_worker, "quality": quality}
    parts[args.part](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
