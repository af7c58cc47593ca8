from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lowres_ocr.core.geometry import HR_SIZE, LR_SIZE, PAD_VALUE, SQUEEZE, Geometry, hr_input, lr_input

ASPECT = Geometry("aspect", height=24, width=288)


def _crop(w: int, h: int) -> Image.Image:
    rng = np.random.default_rng(w * 1000 + h)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_squeeze_is_the_default_and_resizes_the_whole_crop() -> None:
    assert (LR_SIZE, HR_SIZE) == ((64, 16), (128, 32))
    img = _crop(100, 30)
    expected = np.asarray(img.resize((64, 16), Image.BICUBIC), dtype=np.float32).transpose(2, 0, 1) / 255.0
    np.testing.assert_array_equal(lr_input(img), expected)
    assert hr_input(img).shape == (3, 32, 128)
    assert SQUEEZE.sr_shape() == (3, 32, 128)


@pytest.mark.parametrize(("size", "content"), [((40, 40), 24), ((160, 40), 96), ((800, 40), 288), ((6, 10), 14)])
def test_aspect_keeps_the_ratio_pads_the_rest_and_squeezes_past_the_cap(size: tuple[int, int], content: int) -> None:
    img = _crop(*size)
    arr = ASPECT.to_array(img)
    assert arr.shape == (3, 24, 288) and arr.dtype == np.float32
    assert ASPECT.content_width(img.size) == content
    expected = np.asarray(img.resize((content, 24), Image.BICUBIC), dtype=np.float32).transpose(2, 0, 1) / 255.0
    np.testing.assert_array_equal(arr[:, :, :content], expected)
    assert np.all(arr[:, :, content:] == PAD_VALUE)


def test_the_hr_side_is_the_same_geometry_at_the_sr_scale() -> None:
    img = _crop(160, 40)
    hr = hr_input(img, ASPECT)
    assert hr.shape == (3, 48, 576) == ASPECT.sr_shape()
    assert np.all(hr[:, :, 192:] == PAD_VALUE) and not np.all(hr[:, :, 191] == PAD_VALUE)


def test_bad_settings_and_round_trip() -> None:
    assert Geometry.from_config(ASPECT.to_config()) == ASPECT
    assert Geometry.from_config(None) == SQUEEZE
    with pytest.raises(ValueError, match="kind"):
        Geometry("stretch")
    with pytest.raises(TypeError):
        Geometry.from_config({"hieght": 24})
