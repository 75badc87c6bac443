"""The networks' weights: one canonical form, the file formats behind one loader, and where they are kept.

- `canonical`: VGG-19 and the AdaIN decoder as `VGGWeights`/`DecoderWeights`, and their checksummed `.npz`.
- `formats`: `load_vgg`/`load_decoder`, the one loader of every file the engine accepts (`.npz`, `.mat`,
  `.pth`), told apart by their first bytes; `matconvnet` and `torch_legacy` read the foreign formats.
- `cache`: where the weights are looked for (an argument, the environment, the cache) and loading from there.
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
    load_adain_decoder,
    load_weights,
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
from engine.weights.formats import load_decoder, load_vgg
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
    "load_adain_decoder",
    "load_decoder",
    "load_vgg",
    "load_weights",
    "resolve_decoder_path",
    "resolve_weights_path",
    "synthetic",
    "synthetic_decoder",
    "validate",
]
