from __future__ import annotations

import json

from kfp import dsl

from components.conftest import artifact
from components.evaluate.component import evaluate


def _run(model_dir, data_dir, tmp_path, min_accuracy):
    report = artifact(dsl.HTML, tmp_path / "report.html")
    metrics = artifact(dsl.Metrics, tmp_path / "metrics")
    pred = artifact(dsl.Dataset, tmp_path / "predictions")
    passed = evaluate.python_func(model=artifact(dsl.Model, model_dir), data=artifact(dsl.Dataset, data_dir), report=report,
                                  metrics=metrics, predictions=pred, min_accuracy=min_accuracy, sets="textzoom_easy,svt_test",
                                  smoke_set="textzoom_easy", smoke_count=10)
    return passed, metrics, tmp_path / "predictions"


def test_unit_gate_and_smoke_expectations(model_dir, data_dir, tmp_path):
    passed, metrics, pred = _run(model_dir, data_dir, tmp_path / "a", 0.0)
    assert passed is True and metrics.metadata["gate_passed"] == 1.0 and metrics.metadata["samples"] == 24 + 30
    report = json.loads((pred / "report" / "report.json").read_text())
    assert report["average"]["n"] == 54
    assert (tmp_path / "a" / "report.html").read_text().lstrip().lower().startswith("<!doctype html")
    expected = json.loads((pred / "smoke_expected.json").read_text())
    assert len(expected) == 10 and all((pred / "crops" / n).is_file() for n in expected)
    # the expected texts are the evaluation's own sr-mode predictions of those crops
    rows = (pred / "report" / "predictions" / "textzoom_easy.tsv").read_text(encoding="utf-8").splitlines()
    sr = rows[0].split("\t").index("sr")
    assert [expected[n] for n in sorted(expected)] == [r.split("\t")[sr] for r in rows[1:11]]


def test_unit_gate_fails_above_accuracy(model_dir, data_dir, tmp_path):
    passed, metrics, _ = _run(model_dir, data_dir, tmp_path / "b", 101.0)
    assert passed is False and metrics.metadata["gate_passed"] == 0.0
