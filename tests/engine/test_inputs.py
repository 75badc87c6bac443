"""The sizes a run uses its images at, the cap on a style's area, and loading straight to those sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.images import fit_long_side, load_image, save_image
from engine.inputs import STYLE_AREA_RATIO, load_inputs, style_size
from engine.params import StyleParams
from engine.stylize import prepare
from tests.engine.conftest import smooth_image


def test_a_style_of_ordinary_shape_gets_the_content_width_times_its_scale() -> None:
    assert style_size((300, 400), (384, 512)) == (384, 512)
    assert style_size((300, 400), (384, 512), 0.5) == (192, 256)
    # A portrait on a landscape photo is not capped (its area is 16/9 of the content's).
    assert style_size((400, 300), (384, 512)) == (683, 512)


@pytest.mark.parametrize("scale", [1.0, 0.5, 2.0])
def test_a_tall_style_on_a_wide_photo_is_capped_in_area(scale: float) -> None:
    content = np.zeros((51, 512, 3), dtype=np.float32)  # 10:1
    style = np.zeros((1000, 100, 3), dtype=np.float32)  # 1:10: at the content's width, 100× its area
    _, (sized,) = prepare(content, [style], StyleParams(max_size=512, style_scales=(scale,)))
    height, width = sized.shape[:2]
    assert height * width <= STYLE_AREA_RATIO * scale**2 * 51 * 512
    assert height * width >= 0.95 * STYLE_AREA_RATIO * scale**2 * 51 * 512
    assert abs(height / width - 10.0) < 0.2  # the aspect is kept


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    save_image(smooth_image(300, 900, 1), tmp_path / "content.png")
    save_image(smooth_image(600, 200, 2), tmp_path / "style.jpg")
    return tmp_path / "content.png", tmp_path / "style.jpg"


def test_inputs_are_loaded_at_the_sizes_the_run_uses(files: tuple[Path, Path]) -> None:
    content_path, style_path = files
    params = StyleParams(max_size=240)
    content, (style,) = load_inputs(content_path, [style_path], params)
    full_content, full_style = load_image(content_path), load_image(style_path)
    expected = fit_long_side(full_content, 240)
    assert content.shape == expected.shape == (80, 240, 3)
    assert float(np.abs(content - expected).mean()) < 2.0
    # The style is decoded at the size `prepare` gives it (240 wide would be 720 tall: capped to 4× area).
    _, (sized,) = prepare(full_content, [full_style], params)
    assert style.shape == sized.shape
    assert float(np.abs(prepare(content, [style], params)[1][0] - sized).mean()) < 2.0


def test_inputs_check_the_style_count(files: tuple[Path, Path]) -> None:
    content_path, style_path = files
    with pytest.raises(ValueError, match="2 style scales for 1 style images"):
        load_inputs(content_path, [style_path], StyleParams(style_scales=(1.0, 2.0)))
