"""Reading order, perspective crops, word spans from the CTC alignment."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lowres_ocr.core.charset import Charset
from lowres_ocr.core.decoding import ctc_greedy
from lowres_ocr.core.geometry import Geometry
from lowres_ocr.page.crop import crop_quad, reading_order, sub_quad
from lowres_ocr.page.words import split_words, step_fraction


def box(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def test_reading_order_lines_then_left_to_right():
    quads = np.array([
        box(300, 12, 400, 40),  # line 1, right (slightly higher than its neighbour)
        box(10, 110, 200, 140),  # line 3
        box(10, 15, 120, 45),  # line 1, left
        box(150, 60, 260, 88),  # line 2, right
        box(12, 62, 100, 90),  # line 2, left
    ], dtype=np.float32)
    assert reading_order(quads) == [2, 0, 4, 3, 1]
    assert reading_order(np.zeros((0, 4, 2))) == []


def _rotated_text_page(angle: float) -> tuple[np.ndarray, np.ndarray]:
    """A page with a black bar on its left half and a grey one on its right half, rotated by ``angle``."""
    page = np.full((300, 400, 3), 255, dtype=np.uint8)
    rect = ((200.0, 150.0), (200.0, 40.0), angle)
    quad = cv2.boxPoints(rect)
    cv2.fillPoly(page, [np.round(quad).astype(np.int32)], (128, 128, 128))
    left = cv2.boxPoints(((200.0 - 50 * np.cos(np.radians(angle)), 150.0 - 50 * np.sin(np.radians(angle))), (100.0, 40.0), angle))
    cv2.fillPoly(page, [np.round(left).astype(np.int32)], (0, 0, 0))
    return page, quad


def test_crop_of_a_rotated_quad_is_upright():
    page, quad = _rotated_text_page(25.0)
    from lowres_ocr.page.detect import order_quad

    crop, oriented = crop_quad(page, order_quad(quad))
    h, w = crop.shape[:2]
    assert abs(w - 200) <= 2 and abs(h - 40) <= 2
    inner = crop[5:-5, 5:-5, 0].astype(float)
    assert inner[:, : inner.shape[1] // 2 - 5].mean() < 20  # the black half stays on the left
    assert abs(inner[:, inner.shape[1] // 2 + 5:].mean() - 128) < 10
    np.testing.assert_allclose(oriented, order_quad(quad))


def test_tall_crop_turns_counter_clockwise():
    page = np.full((300, 200, 3), 255, dtype=np.uint8)
    page[50:250, 80:120] = 0
    page[50:90, 80:120] = 128  # the top of the tall region
    quad = np.array(box(80, 50, 120, 250), dtype=np.float32)
    crop, oriented = crop_quad(page, quad)
    assert crop.shape[:2] == (40, 200)
    assert crop[20, 5:35, 0].mean() == pytest.approx(128, abs=3)  # the top end now reads first
    # the crop's top edge is the region's right edge, read from its top end down
    np.testing.assert_array_equal(oriented[0], [120, 50])
    np.testing.assert_array_equal(oriented[1], [120, 250])


def test_sub_quad_interpolates_along_the_width():
    quad = np.array(box(0, 0, 100, 20), dtype=np.float32)
    np.testing.assert_allclose(sub_quad(quad, 0.25, 0.5), box(25, 0, 50, 20))


def test_greedy_ctc_records_the_step_of_each_character():
    charset = Charset("t", list("ab "))
    path = [1, 1, 0, 3, 2, 2, 0, 0, 1, 0]  # a a _ ' ' b b _ _ a _
    probs = np.full((1, len(path), 4), 0.01, dtype=np.float32)
    probs[0, np.arange(len(path)), path] = 0.97
    (out,) = ctc_greedy(probs, charset)
    assert out.text == "a ba" and out.steps == [0, 3, 4, 8]


def test_words_split_at_the_spaces_steps():
    # "ab cd" emitted at steps 2, 4, (space) 10, 14, 16 of 20, content filling the whole input
    words = split_words("ab cd", [2, 4, 10, 14, 16], [0.9, 0.7, 0.5, 0.8, 0.6], 20, 128, 128)
    assert [w.text for w in words] == ["ab", "cd"]
    assert words[0].start == 0.0 and words[0].end == pytest.approx(10.5 / 20)
    assert words[1].start == pytest.approx(10.5 / 20) and words[1].end == 1.0
    assert words[0].confidence == pytest.approx(0.8)


def test_padded_input_maps_steps_into_the_content():
    # aspect geometry: the crop fills 64 of the 128 input columns; the space at step 4 of 16 sits at
    # input column 36, i.e. 36/64 of the crop
    geometry = Geometry("aspect", 16, 128, 1)
    content = geometry.content_width((40, 10))
    assert content == 64
    words = split_words("x y", [1, 4, 6], [], 16, geometry.width, content)
    assert words[0].end == pytest.approx(36 / 64) and words[1].start == words[0].end
    assert step_fraction(15, 16, 128, 64) == 1.0  # padding steps clip to the right edge


def test_blank_text_and_bad_alignment():
    assert split_words("", [], [], 10, 64, 64) == []
    assert split_words("  ", [1, 5], [], 10, 64, 64) == []
    with pytest.raises(ValueError, match="alignment"):
        split_words("abc", [1], [], 10, 64, 64)
