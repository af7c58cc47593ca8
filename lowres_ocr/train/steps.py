"""KFP steps of the training stage: torchrun here, or a PyTorchJob/TrainJob on a cluster."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from lowres_ocr.pipeline.workspace import link_tree, workspace


def training_config(preset: str, lmdb: Path, steps: int, init_from: str, output_dir: Path) -> dict[str, Any]:
    """The preset with its datasets pointed at the LMDBs (``data/<set>`` → ``<lmdb>/<set>``)."""
    from lowres_ocr.train.config import load_config

    cfg = load_config(preset)
    entries = list(cfg["data"]["train"]) + ([cfg["data"]["val"]] if cfg["data"].get("val") else [])
    for entry in entries:
        name = Path(entry["path"]).name
        if not (lmdb / name).is_dir():
            if Path(entry["path"]).is_absolute() and Path(entry["path"]).exists():
                continue  # a preset that reads its own data (e.g. gpu: LMDBs prepared on the PVC)
            raise FileNotFoundError(f"preset {preset!r} trains on {entry['path']}, but {lmdb / name} was not built")
        entry["path"] = str((lmdb / name).resolve())
    if steps > 0:
        cfg["train"]["steps"] = steps
        cfg["train"]["checkpoint_every"] = min(int(cfg["train"].get("checkpoint_every", steps)), steps)
        cfg["train"]["val_every"] = steps
    if init_from:
        cfg["init_from"] = str(Path(init_from).resolve())
    cfg["output_dir"] = str(output_dir.resolve())
    return cfg


def _final_checkpoint(run_dir: Path) -> Path:
    for name in ("final.pt", "last.pt"):
        if (run_dir / name).is_file():
            return run_dir / name
    raise FileNotFoundError(f"{run_dir}: training left no final.pt/last.pt")


def _last_metrics(run_dir: Path) -> dict[str, float]:
    metrics: dict[str, float] = {}
    path = run_dir / "metrics.jsonl"
    if path.is_file():
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            metrics.update({k: float(v) for k, v in rec.items() if isinstance(v, (int, float)) and k != "time"})
    return metrics


def train_local(lmdb: Path, out: Path, preset: str, nproc_per_node: int, steps: int, init_from: str) -> dict[str, Any]:
    """torchrun on this machine (CPU: gloo); checkpoint → ``out/model.pt``."""
    from lowres_ocr.train.commands import torchrun_command

    run_dir = out / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = out / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(training_config(preset, lmdb, steps, init_from, run_dir), sort_keys=False))
    cmd = torchrun_command(str(cfg_path), nproc_per_node)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    shutil.copyfile(_final_checkpoint(run_dir), out / "model.pt")
    return {"seconds": round(time.perf_counter() - t0, 1), "command": " ".join(cmd), **_last_metrics(run_dir)}


def train_cluster(lmdb: Path, out: Path, launcher: str, preset: str, nnodes: int, nproc_per_node: int, gpus: int,
                  steps: int, init_from: str, image: str, namespace: str, run_id: str, timeout: float) -> dict[str, Any]:
    """Stage the LMDBs on the workspace PVC (mounted in this step), run a PyTorchJob/TrainJob, copy the checkpoint back."""
    from lowres_ocr.cluster import api, objects, training

    placement = objects.Placement(namespace=namespace, mount_path=workspace())
    if gpus > 0:
        placement.node_selector = {"nvidia.com/gpu.present": "true"}
        placement.tolerations = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    work = Path(placement.mount_path) / "runs" / run_id
    link_tree(lmdb, work / "lmdb")
    cfg = training_config(preset, work / "lmdb", steps, init_from, work / "train")
    (work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    job = objects.TrainingJob(name=f"lowres-ocr-{run_id}"[:63].rstrip("-"), image=image, preset=str(work / "config.yaml"),
                              nnodes=nnodes, nproc_per_node=nproc_per_node, gpus_per_node=gpus,
                              output_dir=str(work / "train"), placement=placement)
    res = training.run_job(api.connect(), training.build_job(launcher, job), timeout=timeout)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_final_checkpoint(work / "train"), out / "model.pt")
    return {"seconds": round(res.seconds, 1), "job": f"{res.kind}/{res.name}", **_last_metrics(work / "train")}
