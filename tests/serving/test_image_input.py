"""Request images → network input: same numbers as lowres_ocr.core.geometry, documented size limits."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from lowres_ocr.core.images import BadImageError, decode_image
from lowres_ocr.core.geometry import lr_input
from lowres_ocr.serving.image_input import ImageLimits, check_header, image_bytes_to_input


def _encode(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P", "1"])
def test_any_mode_matches_preprocess(mode: str) -> None:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (23, 71, 3), dtype=np.uint8)).convert(mode)
    data = _encode(img)
    out = image_bytes_to_input(data)
    assert out.shape == (3, 16, 64) and out.dtype == np.float32 and 0.0 <= out.min() <= out.max() <= 1.0
    np.testing.assert_array_equal(out, lr_input(decode_image(data)))


def test_jpeg_accepted() -> None:
    img = Image.new("RGB", (100, 30), (10, 200, 30))
    assert image_bytes_to_input(_encode(img, "JPEG")).shape == (3, 16, 64)


@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "empty input"),
        (b"\x89PNG\r\n\x1a\n garbage", "not a decodable image"),
        (_encode(Image.new("RGB", (1, 1))), "smaller than the 4 px minimum side"),
        (_encode(Image.new("RGB", (3, 40))), "smaller than the 4 px minimum side"),
        (_encode(Image.new("L", (4000, 4000))), "exceeds the limits"),
        (_encode(Image.new("L", (3100, 10))), "exceeds the limits"),
        (_encode(Image.new("L", (3000, 1500))), "exceeds the limits"),
    ],
    ids=["empty", "garbage", "1x1", "3x40", "4000x4000", "side", "pixels"],
)
def test_bad_inputs(data: bytes, message: str) -> None:
    with pytest.raises(BadImageError, match=message):
        image_bytes_to_input(data, name="image[0]")


def test_limits_are_checked_before_decoding_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    import lowres_ocr.serving.image_input as ii

    monkeypatch.setattr(ii, "decode_image", lambda *a, **k: pytest.fail("pixels decoded before the size check"))
    with pytest.raises(BadImageError):
        image_bytes_to_input(_encode(Image.new("L", (4000, 4000))))


def test_limits_from_config_parameters() -> None:
    limits = ImageLimits.from_parameters({"max_side": "100", "min_side": "2"})
    assert limits == ImageLimits(max_side=100, min_side=2)
    assert check_header(_encode(Image.new("L", (100, 2))), limits, "x") == (100, 2)
    with pytest.raises(BadImageError, match="exceeds"):
        check_header(_encode(Image.new("L", (101, 2))), limits, "x")
    with pytest.raises(BadImageError, match="bytes exceeds"):
        check_header(b"x" * 11, ImageLimits(max_bytes=10), "x")


def test_largest_real_crop_sizes_pass() -> None:
    """The benchmark sets span 6x10 .. 2836x704 px: all inside the limits."""
    for size in [(6, 10), (2836, 704), (1671, 1209)]:
        check_header(_encode(Image.new("L", size)), ImageLimits(), "crop")
