"""Where the weights are looked for (an argument, the environment, the cache), and loading from there."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.weights import (
    VGGWeights,
    WeightsError,
    default_cache_path,
    load_vgg,
    resolve_weights_path,
    synthetic,
)
from tests.engine.weight_files import assert_same_weights


@pytest.fixture
def weights() -> VGGWeights:
    return synthetic(channels=4, source="test:synthetic")


def test_default_cache_path_follows_xdg(tmp_path: Path) -> None:
    assert (
        default_cache_path({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "neural-style-bot" / "vgg19.npz"
    )
    home_cache = Path.home() / ".cache" / "neural-style-bot" / "vgg19.npz"
    assert default_cache_path({}) == home_cache
    assert default_cache_path({"XDG_CACHE_HOME": "relative/dir"}) == home_cache  # invalid per the XDG spec


def test_resolve_prefers_argument_then_env_then_cache(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "VGG_WEIGHTS": str(tmp_path / "env.npz")}
    assert resolve_weights_path(tmp_path / "arg.npz", env) == tmp_path / "arg.npz"
    assert resolve_weights_path(None, env) == tmp_path / "env.npz"
    assert (
        resolve_weights_path(None, {**env, "VGG_WEIGHTS": ""})
        == tmp_path / "cache/neural-style-bot/vgg19.npz"
    )


def test_missing_weights_name_the_fetch_command(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="Run `neural-style weights fetch`") as info:
        load_vgg(environ={"XDG_CACHE_HOME": str(tmp_path)})
    assert str(tmp_path / "neural-style-bot" / "vgg19.npz") in str(info.value)


def test_env_var_names_the_file(tmp_path: Path, weights: VGGWeights) -> None:
    path = tmp_path / "elsewhere.npz"
    weights.save(path)
    loaded = load_vgg(environ={"VGG_WEIGHTS": str(path), "XDG_CACHE_HOME": str(tmp_path / "empty")})
    assert_same_weights(loaded, weights)


def test_corrupt_cache_is_refused_with_the_fetch_command(tmp_path: Path, weights: VGGWeights) -> None:
    path = tmp_path / "neural-style-bot" / "vgg19.npz"
    weights.save(path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(WeightsError, match=r"not a valid weights file.*neural-style weights fetch"):
        load_vgg(environ={"XDG_CACHE_HOME": str(tmp_path)})
