"""`neural-style doctor`: what this host offers the engine, checked in one command before the bot runs on it.

The pace is measured by a worker of `LocalPool`, as the bot's painters measure theirs when they start
(`Runner.probe`): the same process set-up, devices, precision decision and compiled objective, so a GPU
host is checked on the code path its jobs will take.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from engine.budget import REFERENCE_SIZE, SIZES, estimates, largest_within
from engine.memory import free_memory
from engine.params import Precision, StyleParams
from engine.weights import WeightsError, check_pair, load_decoder, load_vgg, resolve_weights_path
from engine.workers import Pace

# The bot's kind of job, which the probe times: L-BFGS with a 16-pixel mirrored margin (bot/painting.py).
BOT_MARGIN = 16
BOT_ITERATIONS = 100  # DEFAULT_ITERATIONS's default
TARGET_SECONDS = 180.0  # BOT_TARGET_SECONDS's default
GIB = 1024**3


def doctor_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="neural-style doctor",
        description="Check this host for the engine: devices, precision, weights, the pace measured now "
        "by a worker, the painting time per size and the default size the bot would choose.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--network", type=Path, help="weights .npz, .mat or .pth (default: $VGG_WEIGHTS, else the cache)"
    )
    p.add_argument("--decoder", type=Path, help="AdaIN decoder (default: $ADAIN_DECODER, else the cache)")
    p.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto")
    p.add_argument(
        "--iterations", type=int, default=BOT_ITERATIONS, help="a painting's, as DEFAULT_ITERATIONS"
    )
    p.add_argument("--max-size", type=int, default=SIZES[-1], help="the largest size, as MAX_IMAGE_SIZE")
    p.add_argument(
        "--target-seconds",
        type=float,
        default=TARGET_SECONDS,
        help="the painting time the default size is chosen for, as BOT_TARGET_SECONDS",
    )
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the worker's probe")
    return p


def doctor(args: argparse.Namespace, say: Callable[[str], None] = print) -> int:
    """Print each section; 0 if the engine can paint here, 1 if not (the reason is printed)."""
    say("Devices")
    for line in _devices():
        say(f"  {line}")
    say("Weights")
    try:
        vgg = load_vgg(args.network)
    except WeightsError as exc:
        say(f"  VGG-19: {exc}")
        return 1
    weights = resolve_weights_path(args.network)
    say(f"  VGG-19: {weights} ({vgg.source}), read and verified")
    try:
        decoder = load_decoder(args.decoder)
        check_pair(vgg, decoder)
        say(f"  AdaIN decoder: {decoder.source}, read and verified with the VGG-19")
    except WeightsError as exc:
        say(f"  AdaIN decoder: none usable, so no previews or fast mode ({exc})")
    params = StyleParams(optimizer="lbfgs", margin=BOT_MARGIN, precision=_precision(args.precision))
    say("Pace (a worker started as the bot starts its painters)")
    began = time.monotonic()
    pace, error = _probe(weights, params, args.timeout)
    if pace is None:
        say(f"  the worker did not measure its pace: {error}")
        return 1
    say(f"  precision {args.precision}: {pace.precision} ({pace.why})")
    say(
        f"  {pace.seconds:.3f} s per iteration at {REFERENCE_SIZE} px (L-BFGS, margin {BOT_MARGIN}); the "
        f"worker started and measured it in {time.monotonic() - began:.0f} s"
    )
    say(f"Painting time, {args.iterations} iterations (coarse to fine above {REFERENCE_SIZE} px)")
    for side, seconds in estimates(pace.seconds, args.iterations, args.max_size).items():
        say(f"  {side:>5} px  {_duration(seconds)}")
    times = estimates(pace.seconds, args.iterations, args.max_size)
    size = largest_within(pace.seconds, args.iterations, args.target_seconds, args.max_size)
    target = f"{args.target_seconds:g} s (BOT_TARGET_SECONDS)"
    if times[size] <= args.target_seconds:
        say(f"Default size: {size} px, the largest painted within {target}")
    else:
        say(f"Default size: {size} px, the smallest: none is painted within {target}")
    say("Memory and disk")
    free = free_memory()
    say(f"  memory available: {'unknown' if free is None else f'{free / GIB:.1f} GiB'}")
    for label, path in (("weights' disk", weights.parent), ("this folder's disk", Path.cwd())):
        say(f"  {label} ({path}): {shutil.disk_usage(path).free / GIB:.1f} GiB free")
    return 0


def _probe(weights: Path, params: StyleParams, timeout: float) -> tuple[Pace | None, str | None]:
    """A one-worker `LocalPool` started with `params` as its probe: its pace, or why there is none."""
    from engine.workers import LocalPool

    pool = LocalPool(weights, workers=1, probe=params).start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pool.paced.done():
                return pool.paced.result(), None
            if pool.start_error is not None:
                return None, pool.start_error
            if pool.ready:  # ready without a pace: its probe failed (the worker's log says why)
                return None, "its probe failed"
            time.sleep(0.1)
        return None, f"no answer within {timeout:g} s"
    finally:
        pool.close()


def _devices() -> list[str]:
    """The CPU (model, cores, the flags the precision depends on) and each GPU nvidia-smi lists."""
    from engine.precision import CPU_FLAGS, cpu_flags, cpu_model

    flags = sorted(cpu_flags() & set(CPU_FLAGS))
    named = " ".join(flags) or "none of " + ", ".join(CPU_FLAGS)
    lines = [f"CPU: {cpu_model()}, {os.cpu_count()} cores, flags that matter: {named}"]
    gpus = _gpus()
    lines += gpus or ["GPU: none found (no CUDA_VISIBLE_DEVICES device or nvidia-smi GPU)"]
    return lines


def _gpus() -> list[str]:
    """One line per GPU: its name, compute capability and free memory, as nvidia-smi reports them."""
    if shutil.which("nvidia-smi") is None or os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return []
    query = "--query-gpu=index,name,compute_cap,memory.free,memory.total"
    try:
        listing = subprocess.run(
            ["nvidia-smi", query, "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return [f"GPU: nvidia-smi failed: {exc}"]
    lines = []
    for row in listing.splitlines():
        fields = [field.strip() for field in row.split(",")]
        if len(fields) == 5:
            index, name, capability, free, total = fields
            lines.append(f"GPU {index}: {name}, compute capability {capability}, {free} free of {total}")
    return lines


def _precision(text: str) -> Precision:
    if text == "float32":
        return "float32"
    return "bfloat16" if text == "bfloat16" else "auto"


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"
