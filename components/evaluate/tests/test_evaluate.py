from __future__ import annotations

import json

from kfp import dsl

from components.conftest import artifact
from components.evaluate.component import evaluate


def _run(model_dir, data_dir, tmp_path, min_accuracy, **gate):
    report = artifact(dsl.HTML, tmp_path / "report.html")
    metrics = artifact(dsl.Metrics, tmp_path / "metrics")
    pred = artifact(dsl.Dataset, tmp_path / "predictions")
    deploy = artifact(dsl.Model, tmp_path / "deploy")
    passed = evaluate.python_func(model=artifact(dsl.Model, model_dir), data=artifact(dsl.Dataset, data_dir), report=report,
                                  metrics=metrics, predictions=pred, min_accuracy=min_accuracy, sets="textzoom_easy,svt_test",
                                  smoke_set="textzoom_easy", smoke_count=10, deploy_model=deploy,
                                  **({"baseline_report": "", "baseline_model": ""} | gate))
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


def test_smoke_expectations_read_an_lmdb_set(tmp_path):
    """An LMDB set names its samples "index N": the crops come from the set reader by sample index."""
    from lowres_ocr.data.build import build_lmdb
    from lowres_ocr.data.reader import load_set
    from lowres_ocr.data.synth import synthesize
    from lowres_ocr.evaluation.steps import smoke_expectations

    synthesize(tmp_path / "pairs", 6, seed=5)
    build_lmdb([tmp_path / "pairs"], tmp_path / "pairs_lmdb")
    ev = load_set(str(tmp_path / "pairs_lmdb"))
    rows = ["where\tlabel\tlabel_36\tsr"] + [f"{s.where}\t{s.label}\tx\tpred{i}" for i, s in enumerate(ev.samples)
                                             if i != 1]  # sample 2 filtered out by the evaluation
    tsv = tmp_path / "pred.tsv"
    tsv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    expected = smoke_expectations(tmp_path / "pairs_lmdb", tsv, tmp_path / "crops", 3)
    assert expected == {"000001.png": "pred0", "000003.png": "pred2", "000004.png": "pred3"}
    assert (tmp_path / "crops" / "000003.png").read_bytes() == ev.samples[2].lr  # the LR side of the pair


def test_candidate_worse_than_the_shipped_model_deploys_the_shipped_one(model_dir, data_dir, tmp_path):
    """The shipped report scored other samples (whole sets): the shipped model is evaluated on the same crops, the
    random-init candidate is worse on them, so the shipped checkpoint is the one to deploy and to smoke-test."""
    from components.conftest import ROOT

    shipped = ROOT / "model" / "lowres_ocr.pt"
    passed, metrics, pred = _run(model_dir, data_dir, tmp_path, 0.0, baseline_report="model/eval/report.json",
                                 baseline_model=str(shipped))
    assert passed is True  # something is deployed ...
    assert metrics.metadata["gate_passed"] == 0.0 and metrics.metadata["deploys_shipped"] == 1.0  # ... not the candidate
    assert (tmp_path / "deploy" / "model.pt").read_bytes() == shipped.read_bytes()
    base = json.loads((pred / "report" / "baseline" / "report.json").read_text())
    assert [s["used"] for s in base["sets"]] == [24, 30]  # the shipped model on the same crops as the candidate
    rows = (pred / "report" / "baseline" / "predictions" / "textzoom_easy.tsv").read_text(encoding="utf-8").splitlines()
    sr = rows[0].split("\t").index("sr")
    expected = json.loads((pred / "smoke_expected.json").read_text())
    assert [expected[n] for n in sorted(expected)] == [r.split("\t")[sr] for r in rows[1:11]]


def test_candidate_as_good_as_the_baseline_is_deployed(model_dir, data_dir, tmp_path):
    passed, metrics, _ = _run(model_dir, data_dir, tmp_path, 0.0, baseline_model=str(model_dir / "model.pt"))
    assert passed is True and metrics.metadata["gate_passed"] == 1.0 and metrics.metadata["deploys_shipped"] == 0.0
    assert (tmp_path / "deploy" / "model.pt").read_bytes() == (model_dir / "model.pt").read_bytes()
