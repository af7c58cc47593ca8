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

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ic15_e2e"


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
