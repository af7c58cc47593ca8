from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lowres_ocr.data.degrade import degrade, degrade_array


def _text_image(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    a = np.full((32, 128, 3), 235, np.uint8)
    for x in range(8, 120, 12):  # dark vertical strokes: high-frequency content that blur removes
        a[6:26, x:x + 3] = rng.integers(0, 60)
    return Image.fromarray(a)


@pytest.mark.parametrize("strength", ["seed", "express"])
def test_size_mode_and_determinism(strength):
    hr = _text_image(0)
    a = degrade(hr, np.random.default_rng(7), strength)
    b = degrade(hr, np.random.default_rng(7), strength)
    assert (a.size, a.mode) == ((64, 16), "RGB")
    assert np.array_equal(np.asarray(a), np.asarray(b))
    outs = {degrade(hr, np.random.default_rng(s), strength).tobytes() for s in range(8)}
    assert len(outs) > 4  # the generator drives it


def test_any_input_size_and_mode():
    assert degrade(Image.new("L", (300, 70), 128), np.random.default_rng(0)).size == (64, 16)
    assert degrade(Image.new("RGBA", (20, 10)), np.random.default_rng(0), "express").size == (64, 16)


def _sharpness(img: Image.Image) -> float:
    g = np.asarray(img.convert("L"), np.float32)
    return float(np.abs(np.diff(g, axis=1)).mean())


def test_seed_recipe_softens_relative_to_plain_resize():
    hr = _text_image(1)
    plain = _sharpness(hr.resize((64, 16), Image.BICUBIC))
    soft = [_sharpness(degrade(hr, np.random.default_rng(s), "seed")) for s in range(40)]
    assert np.median(soft) < 0.8 * plain  # blur / down-up applied with p=0.8 each


def test_express_changes_photometry():
    hr = _text_image(2)
    seed_means = [np.asarray(degrade(hr, np.random.default_rng(s), "seed"), np.float32).mean() for s in range(40)]
    exp_means = [np.asarray(degrade(hr, np.random.default_rng(s), "express"), np.float32).mean() for s in range(40)]
    assert np.std(exp_means) > 3 * np.std(seed_means)  # darkness / low contrast vary the brightness


def test_bad_arguments():
    with pytest.raises(ValueError, match="strength"):
        degrade(_text_image(0), np.random.default_rng(0), "strong")
    with pytest.raises(ValueError, match="RGB uint8"):
        degrade_array(np.zeros((32, 128), np.uint8), np.random.default_rng(0))
