"""A small stylisation on the real VGG-19 weights (fetched into the cache first; skipped offline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.images import fit_long_side, load_image
from engine.params import StyleParams
from engine.precision import cpu_flags
from engine.stylize import Progress, stylize
from engine.weights import VGGWeights, WeightsError

pytestmark = pytest.mark.real_weights

IMAGES = Path(__file__).resolve().parents[2].parent / "shared" / "images"
# Output widths of some VGG-19 layers: a narrow synthetic file is not the real network.
REAL_WIDTHS = {"conv1_1": 64, "conv2_1": 128, "conv3_1": 256, "conv4_1": 512, "conv5_4": 512}


@pytest.fixture(scope="module")
def real_weights(real_weights_path: Path) -> VGGWeights:
    path = real_weights_path
    try:
        weights = VGGWeights.load(path)
    except WeightsError as exc:
        pytest.skip(f"weights at {path} do not load ({exc}); run `neural-style weights fetch`")
    widths = {name: weights.kernels[name].shape[3] for name in REAL_WIDTHS}
    if widths != REAL_WIDTHS:
        pytest.skip(f"weights at {path} are not the real VGG-19 (widths {widths})")
    return weights


def shared_image(name: str) -> np.ndarray:
    path = IMAGES / name
    if not path.is_file():
        pytest.skip(f"shared test image {path} is absent")
    return load_image(path)


def test_small_stylisation_lowers_style_loss_and_changes_the_image(real_weights: VGGWeights) -> None:
    from engine.vgg import VGG19

    content = shared_image("tubingen.jpg")
    style = shared_image("starry_night.jpg")
    params = StyleParams(max_size=64, iterations=40)
    steps: list[Progress] = []

    result = stylize(VGG19(real_weights), content, [style], params, progress=steps.append)

    small_content = fit_long_side(content, 64)
    assert result.image.shape == (48, 64, 3)
    assert result.image.dtype == np.float32
    assert result.image.min() >= 0.0
    assert result.image.max() <= 255.0
    first = steps[0].losses
    # The run starts from the content image: no content loss (bfloat16's compiled step rounds a little
    # differently from the targets' eager pass), and the first style loss is the content's distance to
    # the style.
    assert first.content < 1e-3 * first.style, first
    assert first.style >= 3.0 * result.losses.style, (first, result.losses)
    difference = float(np.mean(np.abs(result.image - small_content)))
    assert difference > 10.0, difference


# Instructions that compute bfloat16 on a CPU; without them TensorFlow emulates it, many times slower.
BFLOAT16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_bfloat16_paints_as_well_as_float32(real_weights: VGGWeights, optimizer: str) -> None:
    """Same run in both formats; both results scored by the float32 objective: within 2 %."""
    import tensorflow as tf

    if not cpu_flags() & BFLOAT16_CPU_FLAGS and not tf.config.list_physical_devices("GPU"):
        pytest.skip(
            "this CPU has no bfloat16 instructions (avx512_bf16, amx_bf16): bfloat16 is emulated here, taking"
            " minutes, and `auto` never chooses it"
        )

    from engine.objective import Objective
    from engine.stylize import prepare
    from engine.vgg import VGG19

    network = VGG19(real_weights)
    content = shared_image("tubingen.jpg")
    style = shared_image("starry_night.jpg")
    base = StyleParams(max_size=160, iterations=30, optimizer=optimizer, margin=16, seed=0)  # type: ignore[arg-type]
    results = {
        precision: stylize(network, content, [style], base.with_overrides(precision=precision)).image
        for precision in ("float32", "bfloat16")
    }

    judge = base.with_overrides(precision="float32")
    small, styles = prepare(content, [style], judge)
    objective = Objective(network, small, styles, judge)
    totals = {
        precision: sum(float(v) for v in objective(tf.constant(network.preprocess(image))))
        for precision, image in results.items()
    }
    assert not np.array_equal(results["float32"], results["bfloat16"])
    assert totals["bfloat16"] <= 1.02 * totals["float32"], totals
    # The same picture to the eye: within a few levels on average.
    assert float(np.mean(np.abs(results["bfloat16"] - results["float32"]))) < 6.0
