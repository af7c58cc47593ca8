"""KFP step of the evaluation stage and the smoke test's expectations."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

_WHERE = re.compile(r"^(?P<labels>.*):(?P<line>\d+) \((?P<paths>.*)\)$")


def smoke_expectations(set_dir: Path, predictions_tsv: Path, crops_out: Path, count: int) -> dict[str, str]:
    """The evaluation's ``sr``-mode predictions (the served path: image → 16×64 → SR → recognizer) of the first
    ``count`` samples of a set, with their input crops (LR side for pairs) copied to ``crops_out``."""
    lines = predictions_tsv.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    if "sr" not in header:
        raise ValueError(f"{predictions_tsv}: no 'sr' column (columns: {header})")
    col = header.index("sr")
    crops_out.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}
    for line in lines[1:count + 1]:
        cells = line.split("\t")
        m = _WHERE.match(cells[0])
        if not m:
            raise ValueError(f"{predictions_tsv}: cannot read the sample location {cells[0]!r}")
        src = set_dir / m.group("paths").split(", ")[-1]  # pairs: (hr, lr) → the LR crop; words: the crop
        name = f"{int(m.group('line')):06d}{src.suffix}"
        shutil.copyfile(src, crops_out / name)
        expected[name] = cells[col]
    return expected


def evaluate(checkpoint: Path, data: Path, sets: list[str], out: Path, min_accuracy: float, baseline: str = "",
             limit: int = 0, smoke_set: str = "", smoke_count: int = 100, predictions_out: Path | None = None,
             modes: str = "") -> dict[str, Any]:
    """``lowres-ocr evaluate run`` on the sets, then ``lowres-ocr evaluate gate``; returns the verdict and accuracy."""
    cli = [sys.executable, "-m", "lowres_ocr.cli", "evaluate"]
    run = cli + ["run", "--data", *[str(data / s) for s in sets], "--weights", str(checkpoint), "--out", str(out),
                 "--latency-samples", "0", "--device", "auto"] + (["--limit", str(limit)] if limit else []) \
        + (["--modes", modes] if modes else [])
    subprocess.run(run, check=True)
    gate = cli + ["gate", "--report", str(out / "report.json"), "--min-accuracy", str(min_accuracy)]
    if baseline:
        gate += ["--baseline", baseline]
    verdict = subprocess.run(gate, capture_output=True, text=True)
    if verdict.returncode not in (0, 1):
        raise RuntimeError(f"evaluate gate failed to run (exit {verdict.returncode}): {verdict.stderr.strip()}")
    report = json.loads((out / "report.json").read_text())
    info: dict[str, Any] = {"passed": verdict.returncode == 0, "gate": (verdict.stdout + verdict.stderr).strip(),
                            "accuracy": float(report["average"]["accuracy"]), "n": int(report["average"]["n"])}
    if smoke_set and predictions_out is not None:
        expected = smoke_expectations(data / smoke_set, out / "predictions" / f"{smoke_set}.tsv",
                                      predictions_out / "crops", smoke_count)
        (predictions_out / "smoke_expected.json").write_text(json.dumps(expected, indent=0))
        info["smoke_crops"] = len(expected)
    return info
