"""KFP step of the evaluation stage: evaluate the candidate, gate it against the shipped model on the same crops,
choose the checkpoint to deploy, and keep the smoke test's expectations of that checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lowres_ocr.evaluation.gate import gate_per_set, read_report, same_samples, set_accuracies


def _suffix(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return ".png"
    if data.startswith(b"\xff\xd8"):
        return ".jpg"
    return ".img"


def smoke_expectations(set_dir: Path, predictions_tsv: Path, crops_out: Path, count: int) -> dict[str, str]:
    """The evaluation's ``sr``-mode predictions (the served path: image → the model's input geometry → SR →
    recognizer) of the first ``count`` predicted samples of a set, with their input crops (LR side for pairs) copied to ``crops_out``.

    The crops are read by the set reader (folders, ``PATH:labels.tsv`` variants, LMDBs), matched to the rows of
    ``predictions_tsv`` by the sample's ``where`` and named by its 1-based sample index."""
    from lowres_ocr.data.reader import load_set

    lines = predictions_tsv.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    if "sr" not in header:
        raise ValueError(f"{predictions_tsv}: no 'sr' column (columns: {header})")
    col = header.index("sr")
    ev = load_set(str(set_dir))
    index = {s.where: i for i, s in enumerate(ev.samples)}
    crops_out.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}
    for line in lines[1:count + 1]:
        cells = line.split("\t")
        if cells[0] not in index:
            raise ValueError(f"{predictions_tsv}: sample {cells[0]!r} is not in the set {set_dir}")
        i = index[cells[0]]
        sample = ev.samples[i]
        data = sample.lr if ev.kind == "pairs" else sample.hr
        if data is None:
            raise ValueError(f"{set_dir}: sample {cells[0]!r} has no image ({sample.error})")
        name = f"{i + 1:06d}{_suffix(data)}"
        (crops_out / name).write_bytes(data)
        expected[name] = cells[col]
    return expected


def run_evaluation(checkpoint: Path, data: Path, sets: list[str], out: Path, limit: int = 0, modes: str = "") -> dict[str, Any]:
    """``lowres-ocr evaluate run`` of a checkpoint on the sets (first ``limit`` samples each); returns report.json."""
    cmd = [sys.executable, "-m", "lowres_ocr.cli", "evaluate", "run", "--data", *[str(data / s) for s in sets],
           "--weights", str(checkpoint), "--out", str(out), "--latency-samples", "0", "--device", "auto"] \
        + (["--limit", str(limit)] if limit else []) + (["--modes", modes] if modes else [])
    subprocess.run(cmd, check=True)
    return read_report(out / "report.json")


@dataclass
class Baseline:
    """What the candidate is compared with: the shipped model's report on the same crops (or the given report)."""

    report: dict[str, Any] | None = None
    source: str = "none"
    predictions: Path | None = None  # folder of the baseline's predictions/*.tsv, when known


def _resolve(path: str) -> Path | None:
    if not path:
        return None
    from lowres_ocr.pipeline.workspace import project_root

    p = Path(path) if Path(path).is_absolute() else project_root() / path
    return p if p.is_file() else None


def find_baseline(new: dict[str, Any], report_path: str, model_path: str, data: Path, sets: list[str], out: Path,
                  limit: int, modes: str) -> Baseline:
    """The shipped report when it scored the same samples; else the shipped model evaluated here on the same crops;
    else the given report as it is (other samples); else no baseline."""
    report_file, model_file = _resolve(report_path), _resolve(model_path)
    given = read_report(report_file) if report_file else None
    if given is not None and same_samples(new, given):
        return Baseline(given, f"report {report_path} (same samples)", report_file.parent / "predictions")
    if model_file is not None:
        rep = run_evaluation(model_file, data, sets, out / "baseline", limit, modes)
        return Baseline(rep, f"{model_path} evaluated on the same crops", out / "baseline" / "predictions")
    if given is not None:
        return Baseline(given, f"report {report_path} (other samples: no baseline model to evaluate)")
    return Baseline()


def _place(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _smoke_source(choice: str, out: Path, base: Baseline, model_file: Path | None, data: Path, smoke_set: str,
                  smoke_count: int, modes: str) -> Path:
    """predictions/<smoke_set>.tsv of the checkpoint that is deployed (evaluating the shipped one if needed)."""
    if choice == "candidate":
        return out / "predictions" / f"{smoke_set}.tsv"
    if base.predictions is not None and (base.predictions / f"{smoke_set}.tsv").is_file():
        return base.predictions / f"{smoke_set}.tsv"
    assert model_file is not None
    run_evaluation(model_file, data, [smoke_set], out / "baseline_smoke", smoke_count, modes)
    return out / "baseline_smoke" / "predictions" / f"{smoke_set}.tsv"


def evaluate(checkpoint: Path, data: Path, sets: list[str], out: Path, min_accuracy: float, baseline: str = "",
             limit: int = 0, smoke_set: str = "", smoke_count: int = 100, predictions_out: Path | None = None,
             modes: str = "", baseline_model: str = "", tolerance: float = 0.0,
             deploy_out: Path | None = None) -> dict[str, Any]:
    """Evaluate ``checkpoint`` and gate it: average ≥ ``min_accuracy`` and, set by set, not worse than the baseline
    (``baseline`` report / ``baseline_model`` checkpoint, see :func:`find_baseline`) − ``tolerance`` points.

    ``deploy`` in the result: ``candidate`` when it passed, else ``shipped`` when ``baseline_model`` exists (that
    checkpoint is deployed instead), else ``none``. The deployed checkpoint goes to ``deploy_out/model.pt``."""
    new = run_evaluation(checkpoint, data, sets, out, limit, modes)
    base = find_baseline(new, baseline, baseline_model, data, sets, out, limit, modes)
    verdict = gate_per_set(new, min_accuracy, base.report, tolerance)
    model_file = _resolve(baseline_model)
    choice = "candidate" if verdict.passed else "shipped" if model_file is not None else "none"
    gate_text = f"gate {'passed' if verdict.passed else 'failed'}: " \
        + ("; ".join(verdict.reasons) + f" [{verdict.summary}]" if verdict.reasons else verdict.summary)
    info: dict[str, Any] = {"passed": verdict.passed, "deploy": choice, "gate": gate_text, "baseline": base.source,
                            "accuracy": float(new["average"]["accuracy"]), "n": int(new["average"]["n"]),
                            "sets": {k: round(v, 2) for k, v in set_accuracies(new).items()},
                            "baseline_sets": {k: round(v, 2) for k, v in set_accuracies(base.report).items()}
                            if base.report else {}}
    if choice != "none" and deploy_out is not None:
        src = checkpoint if choice == "candidate" else model_file
        assert src is not None
        _place(src, deploy_out / "model.pt")
        info["deploy_model"] = str(checkpoint) if choice == "candidate" else baseline_model
    if smoke_set and predictions_out is not None and choice != "none":
        tsv = _smoke_source(choice, out, base, model_file, data, smoke_set, smoke_count, modes)
        expected = smoke_expectations(data / smoke_set, tsv, predictions_out / "crops", smoke_count)
        (predictions_out / "smoke_expected.json").write_text(json.dumps(expected, indent=0))
        info["smoke_crops"] = len(expected)
    return info
