"""Reports (JSON/Markdown/HTML), KFP metrics, the gate, and the HTML rendered by headless Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lowres_ocr.evaluation.commands import app
from lowres_ocr.evaluation.gate import ReportError, gate, read_report
from lowres_ocr.evaluation.report import PALETTE, kfp_metrics, write_reports
from lowres_ocr.evaluation.runner import Options, evaluate_sets

from .conftest import NO_CHROMIUM, FakePredictor, chromium, color, screenshot

runner = CliRunner()


@pytest.fixture()
def report_dir(fake: FakePredictor, words_dir: Path, pairs_dir: Path, tmp_path: Path) -> Path:
    peer = FakePredictor({color(i): t for i, t in enumerate(["parking", "salutes", "x", "door"])}, name="peer")
    peer.modes = ("lr", "hr")
    report, art = evaluate_sets(fake, [str(words_dir), str(pairs_dir)], peers=[peer],
                                opts=Options(batch_size=4, latency_samples=2, gallery=3, failures=3))
    write_reports(report, art, tmp_path / "rep", command="lowres-ocr evaluate --weights fake")
    return tmp_path / "rep"


def test_report_files(report_dir: Path) -> None:
    report = json.loads((report_dir / "report.json").read_text())
    assert report["schema_version"] == 1 and report["command"] == "lowres-ocr evaluate --weights fake"
    assert report["peers_average"]["peer"]["accuracy"] == pytest.approx(600 / 12)
    md = (report_dir / "report.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| set |"))
    assert "| acc bicubic | acc sr | acc hr |" in header and "| peer |" in header
    avg = next(line for line in md.splitlines() if line.startswith("| **average"))
    assert avg.startswith("| **average (weighted)** |  | 12 |") and "| 50.0 |" in avg and "| 66.7 |" in avg
    assert "## Unreadable samples" in md and "missing.png" in md and "## Skipped lines" in md
    page = (report_dir / "report.html").read_text()
    assert page.count("<svg") == 2 and "data:image/png;base64," in page
    # self-contained: nothing fetched from elsewhere
    assert "src=\"http" not in page and "<link" not in page and "<script" not in page
    assert "Worst failures" in page and "dour" in page


def test_kfp_metrics_flat_floats(report_dir: Path) -> None:
    m = kfp_metrics(json.loads((report_dir / "report.json").read_text()))
    assert m["average_accuracy"] == pytest.approx(800 / 12)
    assert m["pairs_sr_accuracy"] == pytest.approx(400 / 6) and m["words_unreadable"] == 2.0
    assert m["pairs_sr_psnr"] == 100.0 and "peer_peer_average_accuracy" in m
    assert all(isinstance(v, float) for v in m.values())
    assert all(k.replace("_", "").isalnum() for k in m)


def _fake_report(path: Path, sets: dict[str, tuple[int, int]]) -> Path:
    entries = [{"name": n, "model": {"headline_mode": "hr", "modes": {"hr": {"n": n_, "correct": c}}}} for n, (n_, c) in sets.items()]
    total, correct = sum(v[0] for v in sets.values()), sum(v[1] for v in sets.values())
    path.write_text(json.dumps({"average": {"accuracy": 100.0 * correct / total}, "sets": entries}))
    return path


def test_gate_rules(tmp_path: Path) -> None:
    new = read_report(_fake_report(tmp_path / "new.json", {"a": (100, 80), "b": (100, 60)}))  # 70%
    old = read_report(_fake_report(tmp_path / "old.json", {"a": (100, 75), "b": (100, 70)}))  # 72.5%
    assert gate(new, 60).passed
    r = gate(new, 75)
    assert not r.passed and "70.00% is below the threshold 75.00%" in r.reasons[0]
    r = gate(new, 60, old)
    assert not r.passed and "worse than the baseline's 72.50%" in r.reasons[0]
    assert gate(new, 60, old, tolerance=3).passed
    # different sets: compare on the shared ones (a: 80 vs 75)
    other = read_report(_fake_report(tmp_path / "o.json", {"a": (100, 75), "c": (50, 50)}))
    r = gate(new, 60, other)
    assert r.passed and "shared sets" in r.summary
    none = read_report(_fake_report(tmp_path / "n.json", {"z": (10, 10)}))
    assert not gate(new, 60, none).passed


def test_gate_cli(tmp_path: Path) -> None:
    new = _fake_report(tmp_path / "new.json", {"a": (100, 80), "b": (100, 60)})
    old = _fake_report(tmp_path / "old.json", {"a": (100, 75), "b": (100, 70)})
    res = runner.invoke(app, ["gate", "--report", str(new), "--min-accuracy", "50"])
    assert res.exit_code == 0 and "gate passed" in res.output
    res = runner.invoke(app, ["gate", "--report", str(new), "--baseline", str(old), "--min-accuracy", "50"])
    assert res.exit_code == 1 and "gate failed" in res.output and "baseline" in res.output
    res = runner.invoke(app, ["gate", "--report", str(new), "--min-accuracy", "90"])
    assert res.exit_code == 1 and "below the threshold 90.00%" in res.output
    (tmp_path / "bad.json").write_text("{not json")
    res = runner.invoke(app, ["gate", "--report", str(tmp_path / "bad.json"), "--min-accuracy", "50"])
    assert res.exit_code == 2 and "bad.json is not readable JSON" in res.output
    with pytest.raises(ReportError, match="not found"):
        read_report(tmp_path / "absent.json")


@pytest.mark.skipif(chromium() is None, reason=NO_CHROMIUM)
def test_html_renders_in_headless_chromium(report_dir: Path, tmp_path: Path) -> None:
    pixels = screenshot(report_dir / "report.html", tmp_path / "shot.png", tmp_path / "profile").reshape(-1, 3)
    colours = {tuple(int(PALETTE[k][i:i + 2], 16) for i in (1, 3, 5)) for k in range(3)}
    present = {c for c in colours if np.any(np.all(pixels == np.array(c), axis=1))}
    # the bars of the plots are drawn: the model's modes and the peer use the first palette colours
    assert len(present) >= 2, f"plot colours found: {present}"
    assert len(np.unique(pixels, axis=0)) > 50  # text, images and plots, not a blank page
