from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from kfp import dsl

from components.conftest import artifact
from components.train.component import train
from lowres_ocr.cluster import schemas


def test_unit_local_torchrun(lmdb_dir, tmp_path):
    """launcher=local: a real torchrun (1 process, small preset, 2 steps) on the LMDBs."""
    model = artifact(dsl.Model, tmp_path / "model")
    metrics = artifact(dsl.Metrics, tmp_path / "metrics")
    train.python_func(lmdb=artifact(dsl.Dataset, lmdb_dir), model=model, metrics=metrics, preset="small", launcher="local",
                      nproc_per_node=1, steps=2)
    ckpt = torch.load(tmp_path / "model" / "model.pt", map_location="cpu", weights_only=False)
    assert "model" in ckpt and "config" in ckpt
    cfg = (tmp_path / "model" / "config.yaml").read_text()
    assert str(lmdb_dir / "textzoom_train2") in cfg and "steps: 2" in cfg
    assert metrics.metadata["step"] == 2.0
    assert json.loads((tmp_path / "metrics").read_text())["step"] == 2.0


def test_unit_pytorchjob_launcher(lmdb_dir, tmp_path, apiserver, kubeconfig, monkeypatch):
    """launcher=pytorchjob against the fake API server: LMDBs staged on the workspace, job created and followed,
    the checkpoint the job wrote copied back into the model artifact."""
    workspace = tmp_path / "workspace"
    monkeypatch.setenv("LOWRES_OCR_WORKSPACE", str(workspace))

    def operator(obj):  # plays the training pods: write the checkpoint where the job was told to
        args = obj["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["args"]
        out = Path(args[args.index("--output-dir") + 1])
        out.mkdir(parents=True, exist_ok=True)
        torch.save({"model": {}, "config": {}}, out / "final.pt")
        (out / "metrics.jsonl").write_text(json.dumps({"step": 7, "val_accuracy": 0.5}) + "\n")

    apiserver.state.on_create = operator
    model = artifact(dsl.Model, tmp_path / "model")
    metrics = artifact(dsl.Metrics, tmp_path / "metrics")
    run_id = hashlib.sha1(model.uri.encode()).hexdigest()[:12]
    apiserver.state.scripts[f"lowres-ocr-{run_id}"] = [{"conditions": [{"type": "Succeeded", "status": "True"}]}]
    train.python_func(lmdb=artifact(dsl.Dataset, lmdb_dir), model=model, metrics=metrics, preset="small", launcher="pytorchjob",
                      nnodes=2, nproc_per_node=4, gpus=4, image="registry.example/lowres-ocr:1", namespace="ml")
    post = apiserver.calls("POST")[0]
    schemas.validate(post.body)
    assert post.path == "/apis/kubeflow.org/v1/namespaces/ml/pytorchjobs"
    assert post.body["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 1
    assert (workspace / "runs" / run_id / "lmdb" / "textzoom_train2" / "data.mdb").is_file()
    assert (tmp_path / "model" / "model.pt").is_file() and metrics.metadata["val_accuracy"] == 0.5
