"""DB post-processing on synthetic probability maps, and the detector input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lowres_ocr.page.detect import DetectorSettings, db_boxes, input_size, order_quad, prepare, unclip

SETTINGS = DetectorSettings()


def grown(w: float, h: float, ratio: float = SETTINGS.unclip_ratio) -> float:
    """How far the post-processing grows a w×h region on each side."""
    return w * h * ratio / (2 * (w + h))


def rect_quad(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)


def test_rectangles_become_their_grown_quads():
    prob = np.zeros((200, 300), dtype=np.float32)
    rects = [(20, 30, 180, 46), (40, 100, 120, 120), (200, 150, 280, 170)]
    for x0, y0, x1, y1 in rects:
        prob[y0:y1, x0:x1] = 0.9
    quads, scores = db_boxes(prob, (300, 200))
    assert len(quads) == 3
    assert np.all(scores > 0.8)
    found = sorted(quads.tolist(), key=lambda q: (q[0][1], q[0][0]))
    for quad, (x0, y0, x1, y1) in zip(found, sorted(rects, key=lambda r: r[1])):
        d = grown(x1 - x0, y1 - y0)
        np.testing.assert_allclose(quad, rect_quad(x0 - d, y0 - d, x1 + d, y1 + d), atol=2.0)


def test_quads_scale_back_to_the_image():
    prob = np.zeros((100, 160), dtype=np.float32)
    prob[40:56, 30:130] = 0.95
    quads, _ = db_boxes(prob, (480, 300))  # the image is 3x the map
    d = grown(100, 16)
    np.testing.assert_allclose(quads[0], rect_quad(30 - d, 40 - d, 130 + d, 56 + d) * 3, atol=2.0 * 3)


def test_rotated_region_keeps_its_angle():
    prob = np.zeros((300, 300), dtype=np.float32)
    box = ((150.0, 150.0), (160.0, 24.0), 20.0)
    cv2.fillPoly(prob, [np.round(cv2.boxPoints(box)).astype(np.int32)], 0.9)
    quads, _ = db_boxes(prob, (300, 300))
    assert len(quads) == 1
    # the rasterised region is about 2 px larger each way (boundary pixels, the 2x2 dilation)
    d = grown(162, 26)
    expected = order_quad(cv2.boxPoints(((150.0, 150.0), (162 + 2 * d, 26 + 2 * d), 20.0)))
    np.testing.assert_allclose(quads[0], expected, atol=2.0)
    top = quads[0][1] - quads[0][0]
    assert np.degrees(np.arctan2(top[1], top[0])) == pytest.approx(20.0, abs=1.5)


def test_empty_and_faint_maps_give_no_boxes():
    assert db_boxes(np.zeros((64, 64), np.float32), (64, 64))[0].shape == (0, 4, 2)
    faint = np.zeros((64, 64), np.float32)
    faint[20:40, 10:50] = 0.35  # above thresh, below box_thresh
    assert len(db_boxes(faint, (64, 64))[0]) == 0
    specks = np.zeros((64, 64), np.float32)
    specks[10, 10] = specks[30:32, 30:32] = 0.99  # smaller than min_size
    assert len(db_boxes(specks, (64, 64))[0]) == 0


def test_order_quad_is_clockwise_from_top_left():
    shuffled = np.array([[10, 20], [0, 0], [10, 0], [0, 20]], dtype=np.float32)
    np.testing.assert_array_equal(order_quad(shuffled), rect_quad(0, 0, 10, 20))


def test_unclip_grows_by_area_ratio_over_perimeter():
    out = unclip(rect_quad(0, 0, 100, 10), 2.0)
    d = 100 * 10 * 2.0 / 220
    np.testing.assert_allclose(out.min(0), [-d, -d], atol=0.2)
    np.testing.assert_allclose(out.max(0), [100 + d, 10 + d], atol=0.2)


@pytest.mark.parametrize("size,limit,expected", [((1000, 500), 960, (960, 480)), ((100, 33), 960, (96, 32)),
                                                 ((2000, 3000), 960, (640, 960)), ((10, 10), 960, (32, 32))])
def test_input_size_max_keeps_aspect_in_multiples_of_32(size, limit, expected):
    assert input_size(*size, DetectorSettings(limit_side=limit, limit_type="max")) == expected


@pytest.mark.parametrize("size,expected", [((1280, 720), (1312, 736)), ((1000, 800), (992, 800)), ((100, 40), (1824, 736)),
                                           ((3000, 500), (1984, 320)), ((4000, 3000), (1984, 1504))])
def test_input_size_min_brings_the_shorter_side_up_and_caps_the_longer(size, expected):
    """The rapidocr wheel's preprocessing for this detector (shorter side ≥ 736) and our cap (longer side ≤ 2000)."""
    assert input_size(*size) == expected


def test_prepare_is_bgr_scaled_to_minus_one_one():
    rgb = np.zeros((50, 70, 3), dtype=np.uint8)
    rgb[..., 0] = 255  # pure red
    x = prepare(rgb, DetectorSettings(limit_side=960, limit_type="max"))
    assert x.shape == (1, 3, 64, 64) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, 10, 10], [-1.0, -1.0, 1.0])  # B, G, R


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="limit_side"):
        DetectorSettings(limit_side=8)
    with pytest.raises(ValueError, match="limit_type"):
        DetectorSettings(limit_type="longer")
    with pytest.raises(ValueError, match="thresh"):
        DetectorSettings(thresh=1.5)


def test_settings_round_trip_through_parameters():
    settings = DetectorSettings(limit_side=640, limit_type="max", max_side=1200, thresh=0.25, box_thresh=0.6, unclip_ratio=1.8)
    assert DetectorSettings.from_parameters(settings.to_parameters()) == settings
    assert DetectorSettings.from_parameters({}) == DetectorSettings()
