"""Metric unit tests with hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lowres_ocr.evaluation.metrics import (
    PSNR_CAP,
    Tally,
    edit_distance,
    gaussian_window,
    label_filter,
    one_minus_ned,
    psnr,
    score,
    ssim,
    tally,
    weighted_average,
)


@pytest.mark.parametrize("a,b,d", [
    ("kitten", "sitting", 3),  # k→s, e→i, +g
    ("flaw", "lawn", 2),  # -f, +n
    ("", "abc", 3),
    ("abc", "", 3),
    ("abc", "abc", 0),
    ("ab", "ba", 2),  # no transpositions in Levenshtein
])
def test_edit_distance(a: str, b: str, d: int) -> None:
    assert edit_distance(a, b) == d


def test_one_minus_ned() -> None:
    assert one_minus_ned("kitten", "sitting") == pytest.approx(1 - 3 / 7)
    assert one_minus_ned("", "") == 1.0
    assert one_minus_ned("abc", "") == 0.0


def test_protocol_normalisation_both_sides() -> None:
    s = score("Café!", "CAFE")  # accents folded, case and punctuation dropped
    assert s.correct and not s.correct_cs and s.length == 4
    s = score("It´s", "its")
    assert s.correct and not s.correct_cs
    s = score("cap GIRO", "capGIRO")  # the charset has no space: case-sensitive match ignores spaces
    assert s.correct and s.correct_cs
    s = score("HELLO", "HELL0")  # O vs zero is an error under both
    assert not s.correct and s.one_minus_ned == pytest.approx(0.8)


def test_label_filter() -> None:
    assert label_filter("")[0] == "empty_label"
    assert label_filter("$")[0] == "empty_label"  # nothing left after normalize_36
    assert label_filter("a" * 26)[0] == "too_long"
    assert label_filter("a" * 25) is None
    assert label_filter("a-" * 25) is None  # 25 characters after normalisation
    assert label_filter("brüno's") is None


def test_weighted_average_pools_samples() -> None:
    # set A: 3 of 4 right (75%), set B: 1 of 6 right (16.7%); pooled 4/10 = 40%, not the mean 45.8%
    a = tally([score("x", "x")] * 3 + [score("x", "y")])
    b = tally([score("x", "x")] + [score("x", "y")] * 5)
    avg = weighted_average([a, b])
    assert avg["n"] == 10
    assert avg["accuracy"] == pytest.approx(40.0)
    assert avg["one_minus_ned"] == pytest.approx(40.0)
    assert weighted_average([Tally()])["accuracy"] == 0.0


def test_psnr_known_pair() -> None:
    x = np.full((3, 32, 128), 0.5)
    y = np.full((3, 32, 128), 0.25)
    # MSE = 0.25² = 0.0625 → 10·log10(1 / 0.0625) = 12.0412 dB
    assert psnr(x, y) == pytest.approx(10 * math.log10(16))
    assert psnr(x, x) == PSNR_CAP
    with pytest.raises(ValueError):
        psnr(x, y[:, :, :64])


def test_ssim_constant_pair() -> None:
    # constant images: all variances are 0, so SSIM = (2ab + C1) / (a² + b² + C1) · C2 / C2
    a, b, c1 = 0.5, 0.25, 0.01 ** 2
    x, y = np.full((3, 32, 128), a), np.full((3, 32, 128), b)
    assert ssim(x, y) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1))
    assert ssim(x, y) == pytest.approx(0.2501 / 0.3126)


def test_ssim_single_window_hand_worked() -> None:
    # an 11×11 image has one valid window; x is 1 at the centre pixel only, y = 2x.
    # with w = the centre weight: μx = w, μy = 2w, σx² = w(1-w), σy² = 4w(1-w), σxy = 2w(1-w)
    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5 ** 2))
    w = 1.0 / g.sum() ** 2  # centre weight of the normalised 2-D window (g[5] = 1)
    assert gaussian_window()[5, 5] == pytest.approx(w)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    expected = ((4 * w * w + c1) * (4 * w * (1 - w) + c2)) / ((5 * w * w + c1) * (5 * w * (1 - w) + c2))
    x = np.zeros((3, 11, 11))
    x[:, 5, 5] = 1.0
    assert ssim(x, 2 * x) == pytest.approx(expected)
    assert ssim(x, x) == pytest.approx(1.0)


def test_ssim_orders_degradations() -> None:
    rng = np.random.default_rng(0)
    hr = rng.random((3, 32, 128))
    light = np.clip(hr + rng.normal(0, 0.02, hr.shape), 0, 1)
    heavy = np.clip(hr + rng.normal(0, 0.2, hr.shape), 0, 1)
    assert 1.0 > ssim(light, hr) > ssim(heavy, hr)
    assert psnr(light, hr) > psnr(heavy, hr)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(hr[:, :8], hr[:, :8])


def test_line_protocol_for_chinese_and_mixed_lines() -> None:
    from lowres_ocr.evaluation.metrics import label_filter, normalize_line, protocol_for, score

    assert protocol_for(["abc", "湖北省襄阳市"]) == "line" and protocol_for(["abc", "café"]) == "latin36"
    assert normalize_line("７３９　H181-02 88") == "739H181-0288"  # full-width folded, spaces removed
    exact = score("湖北省 襄阳市", "湖北省襄阳市", "line")
    assert exact.correct and exact.one_minus_ned == 1.0 and exact.length == 6
    near = score("湖北省襄阳市", "湖北省襄阳", "line")
    assert not near.correct and abs(near.one_minus_ned - 5 / 6) < 1e-12
    assert label_filter("湖北省", protocol="line") is None
    assert label_filter("湖北省") is not None  # the latin36 protocol cannot score it
    assert label_filter("　 ", protocol="line")[0] == "empty_label"
    assert label_filter("湖" * 65, protocol="line")[0] == "too_long"
