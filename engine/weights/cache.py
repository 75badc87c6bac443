"""Where the weights live: the cache `neural-style weights fetch` fills, or a file the environment names.

Loading from there adds what to do next to every refusal: the user's fix is nearly always to fetch again.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from engine.weights.canonical import DecoderWeights, VGGWeights, WeightsError
from engine.weights.formats import read_decoder, read_vgg

FETCH_COMMAND = "neural-style weights fetch"

# The environment variables that name a weights file to use instead of the cached one.
WEIGHTS_ENV = "VGG_WEIGHTS"
DECODER_ENV = "ADAIN_DECODER"
DECODER_FILE = "adain-decoder.npz"  # cached beside the VGG-19 weights


def default_cache_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where `neural-style weights fetch` caches the weights: `$XDG_CACHE_HOME/neural-style-bot/vgg19.npz`."""
    env = os.environ if environ is None else environ
    cache = env.get("XDG_CACHE_HOME", "")
    # The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
    base = Path(cache) if os.path.isabs(cache) else Path.home() / ".cache"
    return base / "neural-style-bot" / "vgg19.npz"


def resolve_weights_path(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The weights file to use: `path` if given, else `$VGG_WEIGHTS` if set, else the default cache path."""
    if path is not None:
        return path
    env = os.environ if environ is None else environ
    if env.get(WEIGHTS_ENV):
        return Path(env[WEIGHTS_ENV]).expanduser()
    return default_cache_path(env)


def resolve_decoder_path(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The AdaIN decoder: `path` if given, else `$ADAIN_DECODER` if set, else beside the cached VGG-19."""
    if path is not None:
        return path
    env = os.environ if environ is None else environ
    if env.get(DECODER_ENV):
        return Path(env[DECODER_ENV]).expanduser()
    return default_cache_path(env).with_name(DECODER_FILE)


def decoder_path(weights_path: Path) -> Path:
    """Where `fetch_weights` puts the AdaIN decoder when it writes the VGG-19 weights to `weights_path`."""
    return weights_path.with_name(DECODER_FILE)


def load_vgg(path: Path | None = None, environ: Mapping[str, str] | None = None) -> VGGWeights:
    """Weights from `path`, else `$VGG_WEIGHTS`, else the cache: a cached `.npz` or a `.mat`/`.pth`."""
    resolved = resolve_weights_path(path, environ)
    if not resolved.is_file():
        raise WeightsError(
            f"No VGG-19 weights at {resolved}. Run `{FETCH_COMMAND}` to download them, "
            f"or set {WEIGHTS_ENV} to a weights file."
        )
    try:
        return read_vgg(resolved)
    except WeightsError as exc:
        raise WeightsError(f"{exc}. Run `{FETCH_COMMAND}` to fetch a fresh copy.") from exc


def load_decoder(path: Path | None = None, environ: Mapping[str, str] | None = None) -> DecoderWeights:
    """The AdaIN decoder from `path`, else `$ADAIN_DECODER`, else the cache: a cached `.npz` or a `.pth`."""
    resolved = resolve_decoder_path(path, environ)
    if not resolved.is_file():
        raise WeightsError(
            f"No AdaIN decoder at {resolved}. Run `{FETCH_COMMAND}` to download it with the VGG-19 "
            f"weights, or set {DECODER_ENV} to a decoder file."
        )
    try:
        return read_decoder(resolved)
    except WeightsError as exc:
        raise WeightsError(f"{exc}. Run `{FETCH_COMMAND}` to fetch a fresh copy.") from exc
