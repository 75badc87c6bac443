"""The objective against an independent numpy computation, and the optimisation's observable behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from engine.images import rgb_to_ycbcr
from engine.objective import Objective
from engine.params import CONTENT_LAYERS, STYLE_LAYERS, StyleParams
from engine.stylize import Cancelled, crop, iterate, pad, stylize
from engine.vgg import VGG19
from engine.weights import LAYERS, VGGWeights
from tests.engine.conftest import OPTIMIZER_PATHS, smooth_image


def np_conv_same(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """(H, W, C) * (3, 3, C, O) with zero padding 1, stride 1, by explicit sums over the 9 taps."""
    h, w, _ = x.shape
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    out = np.zeros((h, w, kernel.shape[3]), dtype=np.float64)
    for dy in range(3):
        for dx in range(3):
            out += padded[dy : dy + h, dx : dx + w, :] @ kernel[dy, dx].astype(np.float64)
    return out + bias


def np_features(weights: VGGWeights, image: np.ndarray, pooling: str) -> dict[str, np.ndarray]:
    x = (image - weights.mean_pixel).astype(np.float64)
    out = {}
    for name in LAYERS:
        if name.startswith("conv"):
            x = np_conv_same(x, weights.kernels[name], weights.biases[name])
        elif name.startswith("relu"):
            x = np.maximum(x, 0)
        else:
            h, w, c = x.shape
            blocks = x.reshape(h // 2, 2, w // 2, 2, c)
            x = blocks.max(axis=(1, 3)) if pooling == "max" else blocks.mean(axis=(1, 3))
        out[name] = x
    return out


def np_gram(f: np.ndarray) -> np.ndarray:
    flat = f.reshape(-1, f.shape[-1])
    return flat.T @ flat / f.size


def np_objective(
    weights: VGGWeights, image: np.ndarray, content: np.ndarray, styles: list[np.ndarray], p: StyleParams
) -> tuple[float, float, float]:
    """The seed's objective written out in numpy, term by term."""
    x_feats = np_features(weights, image, p.pooling)
    c_feats = np_features(weights, content, p.pooling)
    blend = {"relu4_2": p.content_weight_blend, "relu5_2": 1 - p.content_weight_blend}
    content_loss = sum(
        blend[layer] * p.content_weight * np.sum((x_feats[layer] - c_feats[layer]) ** 2) / c_feats[layer].size
        for layer in CONTENT_LAYERS
    )
    raw = [p.style_layer_weight_exp**i for i in range(len(STYLE_LAYERS))]
    layer_w = [r / sum(raw) for r in raw]
    blends = p.style_blend_weights or (1.0,) * len(styles)
    style_loss = 0.0
    for style, b in zip(styles, blends, strict=True):
        s_feats = np_features(weights, style, p.pooling)
        per = sum(
            w
            * np.sum((np_gram(x_feats[layer]) - np_gram(s_feats[layer])) ** 2)
            / np_gram(s_feats[layer]).size
            for w, layer in zip(layer_w, STYLE_LAYERS, strict=True)
        )
        style_loss += p.style_weight * b / sum(blends) * per
    pre = image - weights.mean_pixel
    dy, dx = pre[1:] - pre[:-1], pre[:, 1:] - pre[:, :-1]
    tv = p.tv_weight * (np.sum(dy**2) / dy.size + np.sum(dx**2) / dx.size)
    return float(content_loss), float(style_loss), float(tv)


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_objective_matches_numpy(network: VGG19, tiny_weights: VGGWeights, pooling: str) -> None:
    content, image = smooth_image(16, 16, 1), smooth_image(16, 16, 2)
    styles = [smooth_image(16, 16, 3), smooth_image(16, 16, 4)]
    params = StyleParams(
        content_weight=3.0,
        content_weight_blend=0.7,
        style_weight=20.0,
        style_layer_weight_exp=1.5,
        style_blend_weights=(1.0, 3.0),
        tv_weight=0.5,
        pooling=pooling,  # type: ignore[arg-type]
        precision="float32",  # the reference is float32; bfloat16 against it: test_precision.py
    )
    objective = Objective(network, content, styles, params)
    ours = [float(x) for x in objective(tf.constant(network.preprocess(image)))]
    expected = np_objective(tiny_weights, image, content, styles, params)
    assert ours == pytest.approx(expected, rel=1e-4)
    assert all(x > 0 for x in expected)


def test_loss_falls_and_output_is_a_valid_image(network: VGG19) -> None:
    content, style = smooth_image(24, 32, 1), smooth_image(20, 20, 2)
    params = StyleParams(iterations=40, seed=0, style_weight=1.0, content_weight=1.0, learning_rate=2.0)
    steps = list(iterate(network, content, [style], params))
    assert [s.iteration for s in steps] == list(range(1, 41))
    first, last = steps[0].losses, steps[-1].losses
    assert last.total < 0.5 * first.total
    image = steps[-1].image
    assert image is not None
    assert image.shape == (24, 32, 3)
    assert image.dtype == np.float32
    assert image.min() >= 0.0
    assert image.max() <= 255.0
    assert all(s.image is None for s in steps[:-1])


def test_content_is_scaled_to_max_size_keeping_aspect(network: VGG19) -> None:
    content, style = smooth_image(60, 90, 1), smooth_image(20, 20, 2)
    result = stylize(network, content, [style], StyleParams(iterations=2, max_size=30, seed=0))
    assert result.image.shape == (20, 30, 3)


def test_previews_come_every_n_iterations(network: VGG19) -> None:
    content, style = smooth_image(16, 16, 1), smooth_image(16, 16, 2)
    steps = list(iterate(network, content, [style], StyleParams(iterations=7, preview_every=3, seed=0)))
    assert [s.iteration for s in steps if s.image is not None] == [3, 6, 7]


def test_same_seed_same_output_and_other_seed_differs(network: VGG19) -> None:
    content, style = smooth_image(16, 24, 1), smooth_image(16, 16, 2)
    params = StyleParams(iterations=5, initial="noise", seed=42)
    a = stylize(network, content, [style], params).image
    b = stylize(network, content, [style], params).image
    c = stylize(network, content, [style], params.with_overrides(seed=43)).image
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0


def test_noiseblend_zero_starts_from_content(network: VGG19) -> None:
    content, style = smooth_image(16, 16, 1), smooth_image(16, 16, 2)
    params = StyleParams(iterations=1, initial="content", initial_noiseblend=0.0, learning_rate=1e-9, seed=0)
    result = stylize(network, content, [style], params)
    np.testing.assert_allclose(result.image, content, atol=1e-3)


def test_preserve_colors_keeps_content_chroma(network: VGG19) -> None:
    content, style = smooth_image(16, 16, 1), smooth_image(16, 16, 2)
    params = StyleParams(iterations=10, seed=0, preserve_colors=True)
    plain = stylize(network, content, [style], params.with_overrides(preserve_colors=False)).image
    kept = stylize(network, content, [style], params).image
    chroma = rgb_to_ycbcr(kept)[..., 1:]
    # Equal wherever clipping to 0..255 did not have to move a pixel.
    inside = np.all((kept > 0.5) & (kept < 254.5), axis=-1)
    assert inside.mean() > 0.5
    np.testing.assert_allclose(chroma[inside], rgb_to_ycbcr(content)[..., 1:][inside], atol=0.05)
    np.testing.assert_allclose(
        rgb_to_ycbcr(kept)[..., 0][inside], rgb_to_ycbcr(plain)[..., 0][inside], atol=0.05
    )


def test_style_blend_weights_select_the_style(network: VGG19) -> None:
    content = smooth_image(16, 16, 1)
    a, b = smooth_image(16, 16, 2), smooth_image(16, 16, 3) * 0.3
    params = StyleParams(content_weight=1.0, style_weight=1.0)
    only_a = Objective(network, content, [a, b], params.with_overrides(style_blend_weights=(1.0, 0.0)))
    just_a = Objective(network, content, [a], params)
    half = Objective(network, content, [a, b], params.with_overrides(style_blend_weights=(2.0, 2.0)))
    just_b = Objective(network, content, [b], params)
    x = tf.constant(network.preprocess(smooth_image(16, 16, 4)))
    assert float(only_a(x)[1]) == pytest.approx(float(just_a(x)[1]), rel=1e-5)
    assert float(half(x)[1]) == pytest.approx(0.5 * float(just_a(x)[1]) + 0.5 * float(just_b(x)[1]), rel=1e-5)


def test_cancel_stops_between_iterations(network: VGG19) -> None:
    content, style = smooth_image(16, 16, 1), smooth_image(16, 16, 2)
    seen: list[int] = []
    with pytest.raises(Cancelled):
        stylize(
            network,
            content,
            [style],
            StyleParams(iterations=100),
            progress=lambda p: seen.append(p.iteration),
            should_cancel=lambda: len(seen) >= 3,
        )
    assert seen == [1, 2, 3]


def test_network_stops_at_deepest_layer_needed(network: VGG19) -> None:
    feats = network.features(tf.zeros((1, 16, 16, 3)), ["relu2_1"])
    assert list(feats) == ["relu2_1"]
    assert feats["relu2_1"].shape == (1, 8, 8, network.kernels["conv2_1"].shape[3])


def test_bad_params_are_refused() -> None:
    with pytest.raises(ValueError, match="iterations"):
        StyleParams(iterations=0)
    with pytest.raises(ValueError, match="content_weight_blend"):
        StyleParams(content_weight_blend=1.5)
    with pytest.raises(ValueError, match="margin"):
        StyleParams(margin=-1)
    with pytest.raises(ValueError, match="unknown parameters: colour"):
        StyleParams.from_dict({"colour": True})
    assert StyleParams.from_dict(StyleParams(style_scales=(1.0, 0.5)).to_dict()) == StyleParams(
        style_scales=(1.0, 0.5)
    )


def test_adain_start_needs_the_start_image_and_uses_it(network: VGG19) -> None:
    content, style = smooth_image(16, 24, 1), smooth_image(16, 16, 2)
    params = StyleParams(iterations=1, initial="adain", learning_rate=1e-9)
    with pytest.raises(ValueError, match="needs the AdaIN image"):
        stylize(network, content, [style], params)
    begin = smooth_image(32, 48, 7)  # another size: it is resized to the content's
    result = stylize(network, content, [style], params, start=begin)
    from engine.images import resize

    np.testing.assert_allclose(result.image, resize(begin, (16, 24)), atol=1e-3)


@pytest.mark.parametrize(("optimizer", "multiscale"), OPTIMIZER_PATHS)
def test_a_margin_is_optimised_around_the_picture_and_cropped_off(
    network: VGG19, optimizer: str, multiscale: bool
) -> None:
    content, style = smooth_image(120, 160, 1), smooth_image(20, 20, 2)
    base = StyleParams(
        iterations=6,
        max_size=160,
        optimizer=optimizer,  # type: ignore[arg-type]
        multiscale=multiscale,
        multiscale_base=100,
        preview_every=1,
        seed=0,
        style_weight=1.0,
        content_weight=1.0,
    )
    plain = list(iterate(network, content, [style], base))
    framed = list(iterate(network, content, [style], base.with_overrides(margin=8)))

    assert [s.iteration for s in framed] == list(range(1, 13 if multiscale else 7))  # 100 → 160 px
    assert [None if s.image is None else s.image.shape for s in framed] == [
        None if s.image is None else s.image.shape for s in plain
    ]
    assert framed[-1].image is not None
    assert framed[-1].image.shape == (120, 160, 3)
    # The loss covers the mirrored frame too, so it differs from the plain run's from the first step.
    assert framed[0].losses.total != plain[0].losses.total


def test_a_margin_starts_from_the_picture_mirrored_into_it(network: VGG19) -> None:
    content, style = smooth_image(16, 24, 1), smooth_image(16, 16, 2)
    params = StyleParams(iterations=1, learning_rate=1e-9, seed=0, margin=5)
    result = stylize(network, content, [style], params)
    np.testing.assert_allclose(result.image, content, atol=1e-3)
    begin = smooth_image(32, 48, 7)
    adain = stylize(network, content, [style], params.with_overrides(initial="adain"), start=begin)
    from engine.images import resize

    np.testing.assert_allclose(adain.image, resize(begin, (16, 24)), atol=1e-3)


def test_pad_mirrors_and_crop_undoes_it() -> None:
    image = smooth_image(6, 9, 3)
    padded = pad(image, 2)
    assert padded.shape == (10, 13, 3)
    np.testing.assert_array_equal(padded[0], padded[4])  # row -2 mirrors row 2
    np.testing.assert_array_equal(padded[:, 1], padded[:, 3])  # column -1 mirrors column 1
    np.testing.assert_array_equal(crop(padded[np.newaxis], 2)[0], image)
    assert pad(image, 0) is image
