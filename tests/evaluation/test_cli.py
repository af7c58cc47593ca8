"""``lowres-ocr evaluate`` through typer's CliRunner on a real (tiny, untrained) checkpoint and its ONNX export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lowres_ocr.cli import app as root_app
from lowres_ocr.evaluation.commands import app, expand_multi

runner = CliRunner()


def test_expand_multi() -> None:
    assert expand_multi(["--data", "a", "b", "--out", "d", "--peers", "x", "y"]) == \
        ["--data", "a", "--data", "b", "--out", "d", "--peers", "x", "--peers", "y"]
    assert expand_multi(["--weights", "w", "--data", "a"]) == ["--weights", "w", "--data", "a"]


def test_evaluate_default_command_and_reports(tiny_checkpoint: Path, words_dir: Path, pairs_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = runner.invoke(root_app, ["evaluate", "--weights", str(tiny_checkpoint), "--data", str(words_dir),
                                   f"{words_dir}:labels_cs.tsv", str(pairs_dir), "--out", str(out),
                                   "--batch-size", "4", "--latency-samples", "2", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "average accuracy" in res.output
    report = json.loads((out / "report.json").read_text())
    assert [s["name"] for s in report["sets"]] == ["words", "words:labels_cs", "pairs"]
    assert report["sets"][0]["unreadable"] == 2 and report["sets"][2]["image_quality"]["sr"]["ssim"] <= 1.0
    assert report["model"]["device"] == "cpu" and report["average"]["n"] == 18
    md = (out / "report.md").read_text()
    assert "| words:labels_cs | words | 6 |" in md and "corrupt.png" in md
    assert (out / "predictions" / "pairs.tsv").is_file()


def test_evaluate_run_subcommand_and_peer_skipped(tiny_checkpoint: Path, words_dir: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pytesseract" else real(name, *a))
    res = runner.invoke(app, ["run", "--weights", str(tiny_checkpoint), "--data", str(words_dir), "--out", str(tmp_path / "o"),
                              "--peers", "tesseract", "--latency-samples", "0"])
    assert res.exit_code == 0, res.output
    assert "peer tesseract skipped: pytesseract is not installed" in res.output
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert "pytesseract is not installed" in report["peers_skipped"]["tesseract"]


@pytest.mark.parametrize("make_bad,expect", [
    (lambda p: p / "missing_set", "missing_set: no such file or directory"),
    (lambda p: (p / "plain").mkdir() or p / "plain", "plain: "),
    (lambda p: ((p / "x.mdb").write_bytes(b"0" * 4096), p / "x.mdb")[1], "x.mdb: not a readable LMDB"),
])
def test_bad_set_is_one_line_error(tiny_checkpoint: Path, words_dir: Path, tmp_path: Path, make_bad, expect: str) -> None:
    bad = make_bad(tmp_path)
    res = runner.invoke(root_app, ["evaluate", "--weights", str(tiny_checkpoint), "--data", str(words_dir), str(bad),
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], res.output
    assert not (tmp_path / "o").exists()


def test_model_argument_errors(tmp_path: Path, words_dir: Path) -> None:
    res = runner.invoke(app, ["--data", str(words_dir), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "exactly one of --weights" in res.output
    res = runner.invoke(app, ["--weights", str(tmp_path / "none.pt"), "--data", str(words_dir), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "none.pt not found" in res.output


def test_onnx_predictor_matches_checkpoint(tiny_checkpoint: Path, real_words_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    from lowres_ocr.evaluation.predictors import OnnxPredictor, TorchPredictor
    from lowres_ocr.evaluation.runner import Options, evaluate_sets
    from lowres_ocr.export.onnx_export import export_onnx
    from lowres_ocr.network import load_model

    model, _ = load_model(tiny_checkpoint)
    onnx = OnnxPredictor(export_onnx(model, tmp_path / "tiny.onnx", config=model.config))
    torch_p = TorchPredictor(tiny_checkpoint)
    rows = [line.split("\t") for line in (real_words_dir / "labels.tsv").read_text(encoding="utf-8").splitlines()[:24]]
    images = [Image.open(real_words_dir / r[0]).convert("RGB") for r in rows]
    assert [d.text for d in onnx.predict(images, "sr", 8)] == [d.text for d in torch_p.predict(images, "sr", 8)]
    assert onnx.super_resolve(images[:3], 2).shape == (3, 3, 32, 128)
    # the exported graph holds the deployed path only: hr is that path given the HR image, bicubic does not exist
    assert [d.text for d in onnx.predict(images, "hr", 8)] == [d.text for d in torch_p.predict(images, "sr", 8)]
    with pytest.raises(ValueError, match="supports modes"):
        onnx.predict(images, "bicubic", 8)
    report, _ = evaluate_sets(onnx, [str(real_words_dir)], opts=Options(batch_size=16, latency_samples=2, limit=24))
    assert report["sets"][0]["model"]["headline_mode"] == "hr" and report["sets"][0]["used"] > 0


def test_python_entry_point_for_the_component(tiny_checkpoint: Path, pairs_dir: Path, tmp_path: Path) -> None:
    from lowres_ocr.evaluation.api import Options, gate, kfp_metrics, run_evaluation

    report, paths = run_evaluation(tiny_checkpoint, [str(pairs_dir)], tmp_path / "o", device="cpu",
                                   options=Options(batch_size=4, latency_samples=1), command="component")
    assert set(paths) == {"json", "md", "html"} and all(p.is_file() for p in paths.values())
    metrics = kfp_metrics(report)
    assert {"average_accuracy", "pairs_sr_accuracy", "pairs_bicubic_accuracy", "pairs_hr_accuracy", "pairs_sr_ssim"} <= set(metrics)
    assert json.loads(paths["json"].read_text())["command"] == "component"
    assert gate(report, min_accuracy=0.0).passed and not gate(report, min_accuracy=100.1).passed
    with pytest.raises(ValueError, match="exactly one of"):
        run_evaluation(None, [str(pairs_dir)], tmp_path / "x")
