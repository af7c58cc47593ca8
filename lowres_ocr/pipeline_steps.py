"""What each Kubeflow component does, as plain functions (the components in ``components/`` only call these).

Every function takes paths and plain values and returns a JSON-able dict, so it runs the same inside a
``kfp.local`` subprocess, a cluster pod, or a test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

SERVING_STATE_ENV = "LOWRES_OCR_SERVING_STATE"


def workspace() -> str:
    """Where the workspace PVC is mounted in the step's pod (and in the training / Triton pods)."""
    return os.environ.get("LOWRES_OCR_WORKSPACE", "/workspace")


def project_root() -> Path:
    """The checkout (or the image's /app): ``LOWRES_OCR_ROOT``, else the nearest folder above cwd with ``.dvc/``."""
    env = os.environ.get("LOWRES_OCR_ROOT")
    if env:
        return Path(env).resolve()
    from lowres_ocr.data.remote import repo_root

    return repo_root()


def _link_tree(src: Path, dst: Path) -> None:
    """Copy a folder, hard-linking files where the filesystem allows (datasets are read-only inputs)."""
    def link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, dst, copy_function=link, dirs_exist_ok=True)


def data_md5(root: Path) -> str:
    doc = yaml.safe_load((root / "data.dvc").read_text())
    return str(doc["outs"][0]["md5"])


# -- version_data -------------------------------------------------------------------------------------
def version_data(out: Path, sets: list[str], revision: str = "", source: str = "auto") -> dict[str, Any]:
    """``dvc pull`` the given sets and copy them to ``out``; ``revision`` (if set) must equal data.dvc's md5."""
    from lowres_ocr.data.remote import pull

    root = project_root()
    md5 = data_md5(root)
    if revision and revision not in (md5, md5.removesuffix(".dir")):
        raise ValueError(f"dataset revision {revision!r} requested, but this checkout/image tracks {md5} (data.dvc)")
    result = pull(root, [f"data/{s}" for s in sets], source=source)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for s in sets:
        _link_tree(root / "data" / s, out / s)
        counts[s] = sum(1 for line in (out / s / "labels.tsv").read_text(encoding="utf-8").splitlines() if line.strip())
    return {"md5": md5, "source": result.source, "pull_seconds": round(result.seconds, 1), "samples": counts}


# -- build_lmdb ---------------------------------------------------------------------------------------
def build_lmdbs(data: Path, out: Path) -> dict[str, Any]:
    """One LMDB per set folder (case-sensitive labels where the set has ``labels_cs.tsv``)."""
    from lowres_ocr.data.build import BuildOptions, build_lmdb

    out.mkdir(parents=True, exist_ok=True)
    kept: dict[str, int] = {}
    skipped: dict[str, int] = {}
    for folder in sorted(p for p in data.iterdir() if (p / "labels.tsv").is_file()):
        labels = "labels_cs.tsv" if (folder / "labels_cs.tsv").is_file() else "labels.tsv"
        rep = build_lmdb([folder], out / folder.name, BuildOptions(labels=labels, overwrite=True))
        kept[folder.name], skipped[folder.name] = rep.kept, len(rep.problems)
    if not kept:
        raise ValueError(f"{data}: no dataset folder (with labels.tsv) inside")
    return {"kept": kept, "skipped": skipped}


# -- train --------------------------------------------------------------------------------------------
def training_config(preset: str, lmdb: Path, steps: int, init_from: str, output_dir: Path) -> dict[str, Any]:
    """The preset with its datasets pointed at the LMDBs (``data/<set>`` → ``<lmdb>/<set>``)."""
    from lowres_ocr.train import load_config

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
    from lowres_ocr.train_commands import torchrun_command

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
    _link_tree(lmdb, work / "lmdb")
    cfg = training_config(preset, work / "lmdb", steps, init_from, work / "train")
    (work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    job = objects.TrainingJob(name=f"lowres-ocr-{run_id}"[:63].rstrip("-"), image=image, preset=str(work / "config.yaml"),
                              nnodes=nnodes, nproc_per_node=nproc_per_node, gpus_per_node=gpus,
                              output_dir=str(work / "train"), placement=placement)
    res = training.run_job(api.connect(), training.build_job(launcher, job), timeout=timeout)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_final_checkpoint(work / "train"), out / "model.pt")
    return {"seconds": round(res.seconds, 1), "job": f"{res.kind}/{res.name}", **_last_metrics(work / "train")}


# -- export / TensorRT / repository ---------------------------------------------------------------------
def export_onnx(checkpoint: Path, out: Path, parity_data: Path, parity_count: int = 200) -> dict[str, Any]:
    from lowres_ocr import export
    from lowres_ocr.network import load_model

    model, payload = load_model(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    path = export.export_onnx(model, out / "model.onnx", config=payload.get("config"))
    names, lr = export.load_crops(parity_data, parity_count)
    result = export.check_parity(model, path, names, lr)
    if not result.passed:
        raise RuntimeError(f"ONNX parity failed: {result.summary()}")
    return {"parity": result.summary(), "crops": len(names), "bytes": path.stat().st_size}


def convert_tensorrt(onnx_path: Path, out: Path, fp16: bool = True) -> dict[str, Any]:
    """``lowres-ocr export tensorrt``; exit 69 (no GPU/TensorRT) → {"built": False}."""
    from lowres_ocr.export import EXIT_SKIPPED

    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "lowres_ocr.cli", "export", "tensorrt", "--onnx", str(onnx_path), "--out", str(out / "model.plan")]
    if fp16:
        cmd.append("--fp16")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    if proc.returncode == EXIT_SKIPPED:
        return {"built": False, "reason": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "skipped"}
    if proc.returncode != 0:
        raise RuntimeError(f"TensorRT conversion failed (exit {proc.returncode})")
    return {"built": True}


def build_triton_repo(onnx_path: Path, out: Path, plan: Path | None, local: bool) -> dict[str, Any]:
    from lowres_ocr.serving.repository import RepositoryOptions, write_repository

    opts = RepositoryOptions(local=local)
    write_repository(onnx_path, out, None if local else plan, opts)
    return {"models": sorted(p.parent.name for p in out.glob("*/config.pbtxt")), "local": local,
            "tensorrt": bool(plan is not None and not local)}


# -- deploy / smoke -----------------------------------------------------------------------------------
def deploy_local(repo: Path, workdir: Path, http_port: int = 0, grpc_port: int = 0) -> dict[str, Any]:
    """Start tritonserver detached (own session): it outlives this step; its pid/ports go into the result."""
    from lowres_ocr.serving.server import TritonServer

    workdir.mkdir(parents=True, exist_ok=True)
    server = TritonServer(repo, http_port=http_port or None, grpc_port=grpc_port or None, workdir=workdir,
                          log_path=workdir / "tritonserver.log", ready_timeout=180)
    server.start()
    assert server.process is not None
    info = {"target": "local", "pid": server.process.pid, "http_url": server.http_url, "grpc_url": server.grpc_url,
            "metrics_port": server.metrics_port, "shm_prefix": server.shm_prefix, "log": str(server.log_path),
            "repo": str(repo)}
    state = os.environ.get(SERVING_STATE_ENV)
    if state:  # `lowres-ocr pipeline run-local` reads it to print the endpoint and to stop the server at the end
        Path(state).parent.mkdir(parents=True, exist_ok=True)
        Path(state).write_text(json.dumps(info, indent=1))
    return info


def stop_local(info: dict[str, Any], timeout: float = 30) -> bool:
    """Stop a server started by ``deploy_local`` (SIGTERM to its process group, then SIGKILL); True if it was running."""
    pid = int(info["pid"])
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:  # reap it when it is our own child (a server started in this process)
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                break
        except ChildProcessError:
            pass
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.killpg(pid, signal.SIGKILL)
    for leftover in Path("/dev/shm").glob(f"{info['shm_prefix']}*"):
        leftover.unlink(missing_ok=True)
    return True


def upload_repository(repo: Path, storage_uri: str, mount_path: str) -> str:
    """Put the model repository where the server reads it: ``s3://bucket/prefix`` (boto3, credentials from the
    environment / the S3 Secret) or ``pvc://subdir`` (copied under the workspace PVC mounted at ``mount_path``)."""
    files = [p for p in sorted(repo.rglob("*")) if p.is_file()]
    if storage_uri.startswith("s3://"):
        import boto3

        bucket, _, prefix = storage_uri[len("s3://"):].partition("/")
        s3 = boto3.client("s3")
        for f in files:
            s3.upload_file(str(f), bucket, "/".join(x for x in (prefix.strip("/"), f.relative_to(repo).as_posix()) if x))
        return storage_uri
    if storage_uri.startswith("pvc://"):
        dst = Path(mount_path) / storage_uri[len("pvc://"):].strip("/")
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(repo, dst)
        return storage_uri
    raise ValueError(f"storage_uri must be s3://bucket/prefix or pvc://subdir, got {storage_uri!r}")


def deploy_cluster(target: str, repo: Path, storage_uri: str, namespace: str, gpus: int, image: str) -> dict[str, Any]:
    from lowres_ocr.cluster import api, objects, triton

    t = objects.TritonDeployment(image=image, gpus=gpus, model_repository=storage_uri,
                                 placement=objects.Placement(namespace=namespace, mount_path=workspace()))
    upload_repository(repo, storage_uri, t.placement.mount_path)
    ep = triton.deploy(api.connect(), target, t, storage_uri)
    return {"target": target, "http_url": ep.http_url, "grpc_url": ep.grpc_url, "actions": ep.actions}


# -- evaluate -----------------------------------------------------------------------------------------
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


def smoke(endpoint: dict[str, Any], crops: Path, expected: dict[str, str]) -> dict[str, Any]:
    """Send the crops the evaluation predicted over HTTP and gRPC; every answer must equal its prediction."""
    from lowres_ocr.serving.smoke import smoke_test

    names = sorted(expected)
    images = [(crops / n).read_bytes() for n in names]
    report = smoke_test(endpoint.get("http_url") or None, endpoint.get("grpc_url") or None, images,
                        [expected[n] for n in names])
    result = report.as_dict()
    state = os.environ.get(SERVING_STATE_ENV)
    if state:
        Path(state).with_name("smoke.json").write_text(json.dumps(result, indent=1))
    if not report.passed:
        raise RuntimeError(f"smoke test failed: {json.dumps(result)}")
    return result
