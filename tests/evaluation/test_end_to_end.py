"""End-to-end evaluation on whole images: ground truth, the ICDAR 2015 matching rules, the CLI."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lowres_ocr.cli import app as cli_app
from lowres_ocr.evaluation.end_to_end import Box, GroundTruthError, Tally, image_pairs, iou, read_ground_truth

from .conftest import NO_CHROMIUM, chromium, screenshot

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ic15_e2e"
WEIGHTS = Path(__file__).resolve().parents[2] / "model" / "lowres_ocr.pt"


def _square(x: float, y: float, size: float = 10.0) -> np.ndarray:
    return np.array([[x, y], [x + size, y], [x + size, y + size], [x, y + size]], dtype=np.float64)


def test_ground_truth_lines_keep_commas_and_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "gt_img_1.txt"
    path.write_bytes("\ufeff1,2,11,2,11,12,1,12,HELLO, WORLD\n0,0,4,0,4,4,0,4,###\n".encode("utf-8"))
    boxes = read_ground_truth(path)
    assert [b.text for b in boxes] == ["HELLO, WORLD", "###"] and boxes[0].points[2].tolist() == [11.0, 12.0]
    path.write_text("1,2,3,x,5,6,7,8,word\n")
    with pytest.raises(GroundTruthError, match=r"gt_img_1\.txt:1: expected 8 coordinates"):
        read_ground_truth(path)


def test_iou_of_quadrilaterals() -> None:
    assert iou(_square(0, 0), _square(0, 0)) == pytest.approx(1.0)
    assert iou(_square(0, 0), _square(5, 0)) == pytest.approx(50 / 150)
    bow_tie = np.array([[0, 0], [10, 10], [10, 0], [0, 10]], dtype=np.float64)  # self-intersecting: repaired
    assert 0.0 <= iou(bow_tie, _square(0, 0)) <= 1.0


def test_matching_rules() -> None:
    gt = [Box(_square(0, 0), "Thank"), Box(_square(20, 0), "you"), Box(_square(40, 0), "###"), Box(_square(60, 0), "at")]
    dets = [Box(_square(1, 0), "THANK"),  # right, case ignored
            Box(_square(21, 0), "yon"),  # matched, wrong text
            Box(_square(41, 0), "sale"),  # matched to ###: neither right nor wrong
            Box(_square(61, 0), "at"),  # matched to a word under 3 characters: don't care
            Box(_square(100, 0), "extra")]  # unmatched: counts against precision
    tally = Tally()
    tally.add("img", gt, dets)
    summary = tally.summary()
    assert (summary["gt"], summary["detections"]) == (2, 3)
    assert summary["end_to_end"]["precision"] == pytest.approx(100 / 3) and summary["end_to_end"]["recall"] == 50.0
    assert summary["detection"]["precision"] == pytest.approx(200 / 3) and summary["detection"]["recall"] == 100.0


def test_missing_ground_truth_is_named(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    shutil.copy(FIXTURES / "img_264.jpg", tmp_path / "images")
    with pytest.raises(GroundTruthError, match=r"img_264\.jpg: its ground truth .*gt_img_264\.txt is missing"):
        image_pairs(tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("rapidocr") is None, reason="the detector and the peer come from the rapidocr wheel")
def test_e2e_command_on_a_real_image(tmp_path: Path) -> None:
    data = tmp_path / "set"
    (data / "images").mkdir(parents=True)
    (data / "gt").mkdir()
    shutil.copy(FIXTURES / "img_394.jpg", data / "images")
    shutil.copy(FIXTURES / "gt_img_394.txt", data / "gt")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli_app, ["evaluate", "e2e", "--data", str(data), "--out", str(out), "--peers", "rapidocr"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "e2e_report.json").read_text())
    assert set(report["readers"]) == {"lowres-ocr", "rapidocr"}
    assert report["readers"]["rapidocr"]["end_to_end"]["f"] > 50.0  # SPORTS, CLOSING, DOWN, SALE! are easy words
    assert report["readers"]["lowres-ocr"]["detection"]["recall"] > 0.0
    assert (out / "e2e_report.html").is_file() and len(list((out / "gallery").glob("*.png"))) == 2
    bad = CliRunner().invoke(cli_app, ["evaluate", "e2e", "--data", str(data), "--out", str(out), "--peers", "easyocr"])
    assert bad.exit_code == 2 and "unknown end-to-end peer" in bad.output


@pytest.mark.skipif(importlib.util.find_spec("rapidocr") is None, reason="the detector and the peer come from the rapidocr wheel")
def test_e2e_scores_what_it_can_read_and_names_what_it_cannot(tmp_path: Path) -> None:
    """A truncated image is named with its reason, a blank page (rapidocr's empty result) reads as no words, and the
    good image is still scored: the report is written and the command exits 1."""
    from PIL import Image

    data = tmp_path / "set"
    (data / "images").mkdir(parents=True)
    (data / "gt").mkdir()
    shutil.copy(FIXTURES / "img_394.jpg", data / "images")
    shutil.copy(FIXTURES / "gt_img_394.txt", data / "gt")
    (data / "images" / "img_1.jpg").write_bytes((FIXTURES / "img_394.jpg").read_bytes()[:3000])
    (data / "gt" / "gt_img_1.txt").write_text("0,0,10,0,10,10,0,10,LOST\n")
    Image.new("RGB", (320, 240), "white").save(data / "images" / "img_2.jpg")
    (data / "gt" / "gt_img_2.txt").write_text("")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli_app, ["evaluate", "e2e", "--data", str(data), "--out", str(out), "--peers", "rapidocr"])
    assert result.exit_code == 1, result.output
    assert "img_1.jpg" in result.output and "1 image(s) could not be read" in result.output
    report = json.loads((out / "e2e_report.json").read_text())
    assert list(report["unreadable"]) == ["img_1.jpg"]
    assert [(r["image"], r["detections"]) for r in report["per_image"]["rapidocr"]][0] == ("img_2.jpg", 0)
    assert [r["image"] for r in report["per_image"]["rapidocr"]] == ["img_2.jpg", "img_394.jpg"]
    assert report["readers"]["rapidocr"]["end_to_end"]["f"] > 50.0


def _box_pixels(rgb: np.ndarray) -> int:
    """Pixels of the region-box colour (``render.BOX_COLOUR``, a saturated red), allowing for downscaling blends."""
    from lowres_ocr.page.render import BOX_COLOUR

    px = rgb.astype(int)
    red_over = np.minimum(px[..., 0] - px[..., 1], px[..., 0] - px[..., 2])
    return int(((px[..., 0] > 0.65 * BOX_COLOUR[0]) & (red_over > 0.5 * (BOX_COLOUR[0] - BOX_COLOUR[1]))).sum())


@pytest.mark.skipif(chromium() is None, reason=NO_CHROMIUM)
@pytest.mark.skipif(importlib.util.find_spec("rapidocr") is None, reason="the detector comes from the rapidocr wheel")
def test_annotated_real_image_shows_in_the_html_report(tmp_path: Path) -> None:
    """The gallery PNG of a real scene, read by our in-process reader, is what headless Chromium shows.

    The report's ``<img width=900>`` is found in the screenshot by template matching against the gallery PNG
    downscaled to 900 px (correlation ≥ 0.95), and inside it the red region boxes are drawn: the same picture
    without regions (``render_page(rgb, [])``) has almost none of those pixels (the scene's own red signs are darker).
    """
    import cv2
    from PIL import Image

    from lowres_ocr.evaluation.end_to_end_run import evaluate_end_to_end, our_reader
    from lowres_ocr.page.render import render_page

    if not WEIGHTS.is_file():
        pytest.skip(f"{WEIGHTS} not present")
    data = tmp_path / "set"
    for sub, name in (("images", "img_394.jpg"), ("gt", "gt_img_394.txt")):
        (data / sub).mkdir(parents=True)
        shutil.copy(FIXTURES / name, data / sub)
    report = evaluate_end_to_end(data, {"lowres-ocr": our_reader(WEIGHTS)[0]}, tmp_path / "out", gallery=1)
    assert report["readers"]["lowres-ocr"]["detections"] > 0, "no region read: nothing to annotate"
    shot = screenshot(tmp_path / "out" / "e2e_report.html", tmp_path / "shot.png", tmp_path / "profile", (1200, 700))
    annotated = np.asarray(Image.open(tmp_path / "out" / report["gallery"][0]["png"]).convert("RGB"))
    plain = np.asarray(render_page(np.asarray(Image.open(FIXTURES / "img_394.jpg").convert("RGB")), []))
    size = (900, round(annotated.shape[0] * 900 / annotated.shape[1]))
    small, small_plain = (cv2.resize(a, size, interpolation=cv2.INTER_AREA) for a in (annotated, plain))
    _, score, _, (x, y) = cv2.minMaxLoc(cv2.matchTemplate(shot, small, cv2.TM_CCOEFF_NORMED))
    assert score >= 0.95, f"the annotated image is not shown (best match {score:.3f})"
    shown = shot[y:y + size[1], x:x + size[0]]
    assert _box_pixels(shown) >= 50 + _box_pixels(small_plain), (_box_pixels(shown), _box_pixels(small_plain))
    assert np.abs(shown.astype(int) - small).mean() < np.abs(shown.astype(int) - small_plain).mean()


def test_rapidocr_word_boxes_from_each_kind_of_rapidocr_result():
    """Placed words; rapidocr's empty result (a placeholder word); raw word information where rapidocr placed no
    word boxes for the image (its line boxes are scored then). The last two crashed the 500-image run."""
    from types import SimpleNamespace

    from rapidocr.utils.output import RapidOCROutput

    from lowres_ocr.evaluation.end_to_end_run import rapidocr_word_boxes

    box = [[0, 0], [40, 0], [40, 10], [0, 10]]
    line_box = np.asarray([[0, 0], [90, 0], [90, 10], [0, 10]], dtype=np.float32)
    placed = SimpleNamespace(txts=("SALE DOWN",), boxes=np.asarray([line_box]),
                             word_results=((("SALE", 0.9, box), ("  ", 0.5, box), ("DOWN", 0.8, box)),))
    words, were_words = rapidocr_word_boxes(placed)
    assert were_words and [w.text for w in words] == ["SALE", "DOWN"]
    np.testing.assert_array_equal(words[0].points, np.asarray(box, dtype=np.float64))
    assert rapidocr_word_boxes(RapidOCROutput()) == ([], True)  # nothing read: word_results is (("", 1.0, None),)
    raw = SimpleNamespace(txts=("EXIT", ""), boxes=np.asarray([line_box, line_box]),
                          word_results=((["E", "X"], [[1], [2]], ["en", "en"]), ([], [], [])))
    lines, were_words = rapidocr_word_boxes(raw)
    assert not were_words and [b.text for b in lines] == ["EXIT"]
    np.testing.assert_array_equal(lines[0].points, line_box)
