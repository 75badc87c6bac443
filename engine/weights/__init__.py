"""The networks' weights: one canonical form, the file formats behind one loader, and where they are kept.

- `canonical`: VGG-19 and the AdaIN decoder as `VGGWeights`/`DecoderWeights`, and their checksummed `.npz`.
- `formats`: `read_vgg`/`read_decoder` read one given file of any format the engine accepts (`.npz`,
  `.mat`, `.pth`), told apart by its first bytes; `matconvnet` and `torch_legacy` read the foreign formats.
- `cache`: `load_vgg`/`load_decoder` find the file (an argument, the environment, the cache) and read it,
  telling the user how to fetch it when it is missing or bad.
- `synthetic`: narrow random networks of the same structure, for tests and benchmarks.
- `fetch`: `neural-style weights fetch`, which downloads, verifies, converts and caches the real ones.
"""

from __future__ import annotations

from engine.weights.cache import (
    DECODER_ENV,
    DECODER_FILE,
    FETCH_COMMAND,
    WEIGHTS_ENV,
    decoder_path,
    default_cache_path,
    load_decoder,
    load_vgg,
    resolve_decoder_path,
    resolve_weights_path,
)
from engine.weights.canonical import (
    CONV_LAYERS,
    DECODER_LAYERS,
    DECODER_UPSAMPLE,
    FORMAT_VERSION,
    LAYERS,
    DecoderWeights,
    VGGWeights,
    WeightsError,
    check_pair,
    validate,
)
from engine.weights.formats import read_decoder, read_vgg
from engine.weights.synthetic import synthetic, synthetic_decoder

__all__ = [
    "CONV_LAYERS",
    "DECODER_ENV",
    "DECODER_FILE",
    "DECODER_LAYERS",
    "DECODER_UPSAMPLE",
    "FETCH_COMMAND",
    "FORMAT_VERSION",
    "LAYERS",
    "WEIGHTS_ENV",
    "DecoderWeights",
    "VGGWeights",
    "WeightsError",
    "check_pair",
    "decoder_path",
    "default_cache_path",
    "load_decoder",
    "load_vgg",
    "read_decoder",
    "read_vgg",
    "resolve_decoder_path",
    "resolve_weights_path",
    "synthetic",
    "synthetic_decoder",
    "validate",
]
