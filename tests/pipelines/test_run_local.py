"""The README's main job end to end: ``lowres-ocr pipeline run-local`` (kfp.local, torchrun, tritonserver).

Marked slow (several minutes on 2 cores): run with ``pytest -m slow tests/pipelines/test_run_local.py``. It uses a
short training run and small evaluation so the path, not the accuracy, is what it checks.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..cluster.test_least_privilege import credential_literals

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_run_local_end_to_end_smoke_answers_equal_evaluation(tmp_path):
    if shutil.which("tritonserver") is None and not (Path(sys.executable).parent / "tritonserver").exists():
        pytest.importorskip("pytriton", reason="nvidia-pytriton (the local tritonserver) is not installed")
    root = tmp_path / "pipeline_root"
    cmd = [sys.executable, "-m", "lowres_ocr.cli", "pipeline", "run-local", "--steps", "2", "--eval-limit", "40",
           "--pipeline-root", str(root), "--min-accuracy", "1"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "pipeline finished" in proc.stdout and "full log: " in proc.stdout
    assert len(proc.stdout.splitlines()) <= 40  # one line per step, the rest is in the log file
    log = Path(proc.stdout.rsplit("full log: ", 1)[1].split()[0])
    assert log.is_file() and "Executing task" in log.read_text()
    assert credential_literals(proc.stdout + proc.stderr + log.read_text()) == []  # no credential in the run's logs
    # the candidate (2 steps) is deployed when it passes the gate, else the shipped model is kept
    assert "gate passed" in proc.stdout or "keeping the shipped" in proc.stdout
    smoke = json.loads((root / "serving" / "smoke.json").read_text())
    protocols = {p["protocol"]: p for p in smoke["protocols"]}
    assert set(protocols) == {"http", "grpc"}
    for result in protocols.values():
        assert result["predicted"] > 0 and result["matched"] == result["predicted"]
    assert "stopped" in proc.stdout  # the server the run started is gone again
