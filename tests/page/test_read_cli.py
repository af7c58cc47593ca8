"""``lowres-ocr read`` end to end: a rendered express sheet, real ICDAR 2015 scenes and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from lowres_ocr.cli import app
from lowres_ocr.page.reader import Region

from .conftest import WEIGHTS, read_lines, readable_lines, shipped_reads_chinese

IC15 = Path(__file__).resolve().parents[1] / "fixtures" / "ic15_e2e"
runner = CliRunner()


def _inside(points, xy) -> bool:
    return cv2.pointPolygonTest(np.asarray(points, np.float32).reshape(-1, 1, 2), tuple(map(float, xy)), False) >= 0


def _read(*args: str) -> "object":
    return runner.invoke(app, ["read", *args, "--weights", str(WEIGHTS)])


def test_sheet_lines_found_in_reading_order_and_english_read(express_sheet, page_reader):
    path, lines = express_sheet
    regions = page_reader.read(np.asarray(Image.open(path).convert("RGB")))
    assert len(regions) == len(lines)
    for region, (text, zh, centre) in zip(regions, lines):  # one region per line, in reading order
        assert _inside(region.points, centre), (text, region.points.tolist())
        if not zh:
            assert region.text == text
            assert region.confidence > 0.9
            assert [w.text for w in region.words] == text.split()
    tops = [r.points[1] - r.points[0] for r in regions]
    angles = [np.degrees(np.arctan2(-v[1], v[0])) for v in tops]
    # the quads follow the sheet's rotation (descenders, as in "Beijing", tilt a short line's box a little)
    assert abs(np.median(angles) - 3.0) < 0.5 and np.allclose(angles, 3.0, atol=2.0)


def test_cli_writes_json_and_two_panel_png(express_sheet, tmp_path):
    path, lines = express_sheet
    result = _read(str(path), "--out", str(tmp_path), "--words")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "sheet.json").read_text(encoding="utf-8"))
    assert read_lines([d["text"] for d in data]) == readable_lines(lines, shipped_reads_chinese())
    assert all(len(d["points"]) == 4 and len(d["points"][0]) == 2 for d in data)
    assert all("words" in d and isinstance(d["confidence"], float) for d in data)
    with Image.open(tmp_path / "sheet.png") as fig:
        assert fig.size == (2 * 900, 600)
        right = np.asarray(fig.convert("L"))[:, 900 + 5:]
    assert (right < 100).sum() > 500  # the recognised text is drawn on the right panel


def test_cli_without_words_leaves_them_out(express_sheet, tmp_path):
    result = _read(str(express_sheet[0]), "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert all("words" not in d for d in json.loads((tmp_path / "sheet.json").read_text(encoding="utf-8")))


def _gt(name: str) -> list[tuple[np.ndarray, str]]:
    out = []
    for line in (IC15 / f"gt_{name}.txt").read_text(encoding="utf-8-sig").splitlines():
        parts = line.split(",", 8)
        if parts[8] != "###":
            out.append((np.array(parts[:8], dtype=np.float32).reshape(4, 2), parts[8]))
    return out


@pytest.mark.parametrize("name,min_read", [("img_394", 3), ("img_264", 0)])
def test_real_scene_words_are_covered(page_reader, name, min_read):
    rgb = np.asarray(Image.open(IC15 / f"{name}.jpg").convert("RGB"))
    regions = page_reader.read(rgb)
    for quad, text in _gt(name):
        assert any(_inside(r.points, quad.mean(0)) for r in regions), f"{name}: {text!r} not detected"
    read = {r.text.lower() for r in regions}
    assert sum(text.lower() in read for _, text in _gt(name)) >= min_read


def test_bad_inputs_name_the_file_and_the_others_are_still_read(express_sheet, tmp_path):
    bad = tmp_path / "in"
    bad.mkdir()
    (bad / "notes.png").write_text("not an image\n")
    png = (express_sheet[0]).read_bytes()
    (bad / "cut.png").write_bytes(png[: len(png) // 2])
    Image.new("RGB", (1, 1), "white").save(bad / "dot.png")
    Image.new("RGB", (320, 200), (250, 250, 250)).save(bad / "blank.png")
    Image.new("L", (10000, 10000), 255).save(bad / "huge.png")  # a real 10000x10000 PNG (100 kB: one colour)
    out = tmp_path / "out"
    names = ["notes.png", "cut.png", "dot.png", "huge.png", "blank.png"]
    result = _read(*[str(bad / n) for n in names], "--out", str(out))
    assert result.exit_code == 1
    errors = result.stderr if hasattr(result, "stderr") else result.output
    assert f"{bad / 'notes.png'}: not a decodable image" in errors
    assert f"{bad / 'cut.png'}: not a decodable image" in errors
    assert f"{bad / 'dot.png'}: image of 1x1 px is smaller than" in errors
    assert f"{bad / 'huge.png'}: image of 10000x10000 px exceeds the limits" in errors
    assert json.loads((out / "blank.json").read_text()) == []  # no text: an empty result
    assert (out / "blank.png").is_file()
    assert not (out / "notes.json").exists()


def test_clashing_names_are_refused(express_sheet, tmp_path):
    other = tmp_path / "b"
    other.mkdir()
    (other / "sheet.png").write_bytes(express_sheet[0].read_bytes())
    result = _read(str(express_sheet[0]), str(other / "sheet.png"), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and "sheet" in result.output


def test_word_regions_follow_the_line_quad():
    from types import SimpleNamespace

    from lowres_ocr.core.decoding import Decoded
    from lowres_ocr.core.geometry import Geometry
    from lowres_ocr.page.reader import word_regions

    recognizer = SimpleNamespace(model=SimpleNamespace(geometry=Geometry("squeeze", 16, 64, 2)))
    quad = np.array([[100, 50], [300, 50], [300, 70], [100, 70]], dtype=np.float32)
    dec = Decoded("ab cd", 0.9, [0.9] * 5, [1, 3, 9, 13, 15])
    words = word_regions(quad, (200, 20), dec, 20, recognizer)
    assert [w.text for w in words] == ["ab", "cd"]
    assert isinstance(words[0], Region)
    np.testing.assert_allclose(words[0].points, [[100, 50], [195, 50], [195, 70], [100, 70]])
    np.testing.assert_allclose(words[1].points[0], [195, 50])
