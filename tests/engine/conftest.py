"""Fixtures for engine tests: a narrow synthetic VGG-19 and tiny images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.weights import VGGWeights, synthetic

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
