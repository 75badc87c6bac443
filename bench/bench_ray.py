"""Jobs per minute of the Ray pool with 1 and 2 worker nodes on this machine, with the real VGG-19 weights.

    flock /tmp/bench.lock /work/venv/bin/python bench/bench_ray.py [--jobs 8] [--size 128] [--iterations 40]

For each layout it starts a throwaway Ray cluster on this machine with `ray start --block`: a head node with
no CPUs (it runs no actors) and 1 or 2 worker nodes, each with `--num-cpus` and a custom resource naming it.
The pool runs one actor per worker node (`cpus_per_worker` = the node's CPUs, which is also its TensorFlow
thread count). Once the actors have loaded the weights and run one short warm-up job each, `--jobs` jobs
of one content and one style picture at `--size` px are submitted at once and timed to the last result.
The nodes are stopped by signalling the `ray start` processes this script started, not with `ray stop`,
which would stop every Ray on the machine.

Three layouts: 1 node × 1 CPU, 2 nodes × 1 CPU (the scale-out), and 1 node × 2 CPUs (one actor with two
TensorFlow threads: the whole machine as one worker, like the local pool's default on a 2-core host).
Prints a Markdown block with the machine and its load (`uptime`) before and after.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.images import IMAGES, need  # noqa: E402

RAY_CLI = Path(sys.executable).with_name("ray")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=Path, default=IMAGES, help="folder with the two images")
    p.add_argument("--content", default="tubingen.jpg")
    p.add_argument("--style", default="starry_night.jpg")
    p.add_argument("--size", type=int, default=128, help="long side of the output, px")
    p.add_argument("--iterations", type=int, default=40, help="iterations per job")
    p.add_argument("--jobs", type=int, default=8, help="jobs submitted at once per layout")
    p.add_argument("--weights", type=Path, help="weights file (default: $VGG_WEIGHTS, else the cache)")
    p.add_argument(
        "--layouts", nargs="+", default=["1x1", "2x1", "1x2"], help="NODESxCPUS worker-node layouts"
    )
    return p.parse_args(argv)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def start_node(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """`ray start … --block` in the background; returns once the node says it runs."""
    process = subprocess.Popen(
        [str(RAY_CLI), "start", "--object-store-memory=200000000", "--block", *args],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while b"Ray runtime started" not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"ray start failed:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)
    return process


def stop_nodes(nodes: list[subprocess.Popen[bytes]]) -> None:
    for process in reversed(nodes):  # worker nodes first, then the head
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_layout(
    nodes: int, cpus: int, weights: Path, content: Path, style: Path, args: argparse.Namespace
) -> dict:
    import ray

    from engine.params import StyleParams
    from engine.workers import JobSpec, ProgressEvent, RayPool

    temp = Path(tempfile.mkdtemp(prefix="rayb", dir="/tmp"))  # Ray's socket paths must stay short
    address = f"{ray.util.get_node_ip_address()}:{free_port()}"
    port = address.rsplit(":", 1)[1]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        head = ["--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false", f"--temp-dir={temp}"]
        processes.append(start_node(head, temp / "head.log"))
        for i in range(nodes):
            worker = [f"--address={address}", f"--num-cpus={cpus}", f'--resources={{"node_{i}": 1}}']
            processes.append(start_node(worker, temp / f"node{i}.log"))
        with RayPool(weights, workers=nodes, cpus_per_worker=cpus, address=address) as pool:
            while len(pool.worker_pids()) < nodes:
                time.sleep(0.1)
            resources = {n["NodeID"]: n["Resources"] for n in ray.nodes() if n["Alive"]}
            label = {
                node: next(r for r in resources[node] if r.startswith("node_"))
                for node in pool.worker_nodes()
            }
            placed: dict[str, str] = {}

            def on_progress(event: ProgressEvent) -> None:
                if event.job_id not in placed:
                    for slot in pool._slots:
                        if slot.job is not None and slot.job.spec.job_id == event.job_id:
                            placed[event.job_id] = label[slot.node_id]

            params = StyleParams(iterations=args.iterations, max_size=args.size, seed=0)
            out = temp / "out"
            # One short job per actor first: each traces its compiled step once, outside the timing.
            warmup = StyleParams(iterations=2, max_size=args.size, seed=0)
            for handle in [
                pool.submit(JobSpec(f"w{i}", content, (style,), out / f"w{i}.jpg", warmup))
                for i in range(nodes)
            ]:
                handle.result(600)
            started = time.perf_counter()
            handles = [
                pool.submit(JobSpec(f"b{i}", content, (style,), out / f"b{i}.jpg", params), on_progress)
                for i in range(args.jobs)
            ]
            outcomes = [h.result(3600) for h in handles]
            seconds = time.perf_counter() - started
        failed = [o for o in outcomes if o.status != "done"]
        if failed:
            raise RuntimeError(f"jobs failed: {failed}")
        per_node = {name: list(placed.values()).count(name) for name in sorted(set(label.values()))}
        return {"seconds": seconds, "per_node": per_node, "job_seconds": [o.seconds for o in outcomes]}
    finally:
        stop_nodes(processes)
        shutil.rmtree(temp, ignore_errors=True)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Token authentication (Ray's default for a new cluster) for the nodes and this driver alike, token in
    # ~/.ray. Set here, not on import: other benchmarks and tests import this module's `uptime`.
    os.environ.update(RAY_AUTH_MODE="token", RAY_USAGE_STATS_ENABLED="0")
    need(args.images, [args.content, args.style])
    from engine.weights import resolve_weights_path

    weights = resolve_weights_path(args.weights)
    content, style = args.images / args.content, args.images / args.style
    subprocess.run([str(RAY_CLI), "get-auth-token", "--generate"], capture_output=True, check=True)
    before = uptime()
    rows = []
    for layout in args.layouts:
        nodes, cpus = (int(part) for part in layout.split("x"))
        result = run_layout(nodes, cpus, weights, content, style, args)
        rows.append((nodes, cpus, result))
        print(f"{layout}: {result}", file=sys.stderr)
    after = uptime()
    command = "flock /tmp/bench.lock /work/venv/bin/python bench/bench_ray.py " + " ".join(
        argv or sys.argv[1:]
    )
    print("```")
    print(command.strip())
    print("```")
    machine = platform.processor() or platform.machine()
    print(f"Machine: {machine}, {os.cpu_count()} cores, {platform.platform()}.")
    print(f"Load before: `{before}`; after: `{after}`.")
    print(
        f"{args.jobs} jobs submitted at once, {args.iterations} iterations at {args.size} px, real VGG-19.\n"
    )
    print("| worker nodes × CPUs | actors | wall time (s) | jobs/min | median job (s) | jobs per node |")
    print("|---|---|---|---|---|---|")
    for nodes, cpus, result in rows:
        median = statistics.median(result["job_seconds"])
        spread = ", ".join(f"{name}: {count}" for name, count in result["per_node"].items())
        rate = 60 * args.jobs / result["seconds"]
        print(
            f"| {nodes} × {cpus} | {nodes} | {result['seconds']:.1f} | {rate:.1f} | {median:.1f} | {spread} |"
        )


if __name__ == "__main__":
    main()
