"""Training throughput on CPU: 1 process vs 2 DDP processes (torchrun), same model and per-process batch.

    .venv/bin/python benchmarks/bench_train.py [--config default] [--steps 12] [--batch-size 16]

Runs the real training entry (``torchrun -m lowres_ocr.train``) on the real crops in tests/fixtures, reads the
per-step timestamps from metrics.jsonl and prints samples/s (steps after the first 2 are timed) and the ratio
of 2 processes to the 1-process baseline measured in the same invocation. Nothing else should run meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS = ROOT / "tests" / "fixtures" / "real_crops"


def run(nproc: int, config: str, steps: int, batch: int, out: Path) -> float:
    sets = [f"data.train=[{{path: {WORDS}, weight: 1.0, degrade: express}}]", "data.val=null", f"train.steps={steps}",
            f"train.batch_size={batch}", "train.log_every=1", f"train.checkpoint_every={10 * steps}", "train.val_every=0",
            "train.num_workers=1"]
    cmd = [sys.executable, "-m", "lowres_ocr.train.launch", "--nproc-per-node", str(nproc), "--standalone", "-m",
           "lowres_ocr.train", "--config", config, "--output-dir", str(out)]
    for s in sets:
        cmd += ["--set", s]
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    recs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    times = {r["step"]: r["time"] for r in recs if "time" in r}
    first, last = 2, max(times)
    return (last - first) * batch * nproc / (times[last] - times[first])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="default")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = run(1, args.config, args.steps, args.batch_size, Path(tmp) / "p1")
        two = run(2, args.config, args.steps, args.batch_size, Path(tmp) / "p2")
    print(f"config={args.config} batch/process={args.batch_size} cores={os.cpu_count()}")
    print(f"1 process : {base:7.2f} samples/s (baseline)")
    print(f"2 processes: {two:7.2f} samples/s  ratio {two / base:.2f}x")


if __name__ == "__main__":
    main()
