"""Two Ray nodes on one machine, a head and a worker node started with `ray start`: jobs run on both, and
a lost node fails only its own job.

Each node has its own custom resource (`node_a`, `node_b`) so the test can tell them apart. The bot's side
(the driver) runs in a process of its own, as it would on its own host: Ray keeps per-process state (the
authentication mode among it) that a test process which already ran a local Ray must not share. The nodes
are stopped by signalling the two `ray start --block` processes started here, never with `ray stop`, which
would stop every Ray on the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.images import save_image
from tests.engine.conftest import smooth_image
from tests.timing import scaled, slowdown

ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")

pytestmark = pytest.mark.slow
RAY_CLI = Path(sys.executable).with_name("ray")
# Token authentication, Ray's default for a new cluster, with the token in ~/.ray for all three processes.
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}

DRIVER = """
import json, os, signal, sys, time
from pathlib import Path
import ray
from engine.params import StyleParams
from engine.workers import JobSpec, RayPool

address, weights, folder, raylet_b = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
slowdown = float(sys.argv[5])  # the test session's, for deadlines on painting (tests/timing.py)


def run_two(pool, prefix, iterations):
    started, placed = [], {}

    def on_progress(event):  # on the job's own thread, while its actor runs it
        started.append(event)
        if event.job_id not in placed:
            slot = next(slot for slot in pool._slots if slot.job and slot.job.spec.job_id == event.job_id)
            placed[event.job_id] = label[slot.node_id]

    params = StyleParams(iterations=iterations, seed=0)
    images = folder / "content.png", (folder / "style.png",)
    handles = {}
    for job in (f"{prefix}0", f"{prefix}1"):
        handles[job] = pool.submit(JobSpec(job, *images, folder / f"{job}.png", params), on_progress)
    while set(placed) != set(handles):
        time.sleep(0.01)
    return handles, placed, started


report = {}
with RayPool(weights, workers=2, address=address) as pool:
    while len(pool.worker_pids()) < 2:
        time.sleep(0.1)
    resources = {node["NodeID"]: node["Resources"] for node in ray.nodes() if node["Alive"]}
    label = {node: next(r for r in resources[node] if r.startswith("node_")) for node in pool.worker_nodes()}
    report["actors"] = sorted(label.values())
    report["nodes"] = [pool.worker_nodes(), {node: sorted(r) for node, r in resources.items()}]
    handles, report["placed"], _ = run_two(pool, "j", 300)
    report["statuses"] = [handle.result(120 * slowdown).status for handle in handles.values()]

    # Node b's raylet dies mid-job: its job fails as crashed, the job on node a runs on.
    handles, placed, events = run_two(pool, "long", 100_000)
    os.kill(raylet_b, signal.SIGKILL)
    lost = next(job for job, node in placed.items() if node == "node_b")
    survivor = next(job for job in handles if job != lost)
    outcome = handles[lost].result(60 * slowdown)
    report["lost"] = [outcome.status, outcome.crashed]
    seen = len([e for e in events if e.job_id == survivor])
    while len([e for e in events if e.job_id == survivor]) < seen + 10:
        time.sleep(0.01)
    report["survivor_running"] = not handles[survivor].future.done()
    handles[survivor].cancel()
    report["survivor"] = handles[survivor].result(30 * slowdown).status
print(json.dumps(report))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def start_node(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """`ray start … --block` in the background; returns once the node says it runs."""
    process = subprocess.Popen(
        [str(RAY_CLI), "start", "--num-cpus=1", "--object-store-memory=100000000", "--block", *args],
        env=ENV,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + scaled(90)
    while b"Ray runtime started" not in log.read_bytes():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    return process


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[tuple[str, int]]:
    """The head's address, and the pid of the worker node's raylet (to kill, as if the host were lost)."""
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # Ray's socket paths must stay short
    address = f"{ray.util.get_node_ip_address()}:{free_port()}"
    subprocess.run([str(RAY_CLI), "get-auth-token", "--generate"], env=ENV, capture_output=True, check=True)
    nodes: list[subprocess.Popen[bytes]] = []
    try:
        head = ["--head", f"--port={address.rsplit(':', 1)[1]}", "--include-dashboard=false"]
        nodes.append(start_node([*head, f"--temp-dir={temp}", '--resources={"node_a": 1}'], temp / "a.log"))
        nodes.append(start_node([f"--address={address}", '--resources={"node_b": 1}'], temp / "b.log"))
        raylet = subprocess.run(
            ["pgrep", "-P", str(nodes[1].pid), "-x", "raylet"], capture_output=True, text=True, check=True
        )
        yield address, int(raylet.stdout.split()[0])
    finally:
        for process in reversed(nodes):  # the worker node first, then the head
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(temp, ignore_errors=True)


def test_jobs_run_on_both_nodes_and_a_lost_node_fails_only_its_job(
    two_nodes: tuple[str, int], tiny_weights_file: Path, tmp_path: Path
) -> None:
    save_image(smooth_image(24, 24, 1), tmp_path / "content.png")
    save_image(smooth_image(20, 20, 2), tmp_path / "style.png")
    address, raylet_b = two_nodes
    args = [address, str(tiny_weights_file), str(tmp_path), str(raylet_b), str(slowdown())]
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=scaled(240),  # above the driver's own deadlines, which add up to 210 s before scaling
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # One actor per node (each has one CPU), and the two jobs ran side by side, one on each node.
    assert report["actors"] == ["node_a", "node_b"], report
    assert sorted(report["placed"].values()) == ["node_a", "node_b"], report
    assert report["statuses"] == ["done", "done"]
    assert all((tmp_path / f"j{i}.png").is_file() for i in range(2))
    # The lost node's job came back as crashed (for the store to requeue); the other node's kept running.
    assert report["lost"] == ["failed", True]
    assert report["survivor_running"]
    assert report["survivor"] == "cancelled"
