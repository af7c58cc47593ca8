from __future__ import annotations

import json

from kfp import dsl

from components.conftest import artifact
from components.deploy_triton.component import deploy_triton
from lowres_ocr.cluster import schemas
from lowres_ocr.serving.steps import build_triton_repo, stop_local


def test_unit_local_server_outlives_the_step(onnx_dir, tmp_path):
    repo = tmp_path / "repo"
    build_triton_repo(onnx_dir / "model.onnx", repo, None, local=True)
    endpoint = artifact(dsl.Artifact, tmp_path / "endpoint")
    out = deploy_triton.python_func(repo=artifact(dsl.Model, repo), endpoint=endpoint, deploy_target="local")
    info = json.loads((tmp_path / "endpoint").read_text())
    try:
        assert out.http_url == info["http_url"] and out.grpc_url == info["grpc_url"]
        import urllib.request

        assert info["models"] == ["decode", "detector", "lowres_ocr", "lowres_ocr_page", "preprocess", "recognizer"]
        for model in ("lowres_ocr", "lowres_ocr_page"):  # the crop ensemble and the whole-page endpoint
            with urllib.request.urlopen(f"http://{info['http_url']}/v2/models/{model}/ready", timeout=5) as r:
                assert r.status == 200
    finally:
        assert stop_local(info) is True
    assert stop_local(info) is False  # already gone


def test_unit_kubernetes_target(onnx_dir, tmp_path, apiserver, kubeconfig, monkeypatch):
    monkeypatch.setenv("LOWRES_OCR_WORKSPACE", str(tmp_path / "workspace"))
    repo = tmp_path / "repo"
    build_triton_repo(onnx_dir / "model.onnx", repo, None, local=False)
    endpoint = artifact(dsl.Artifact, tmp_path / "endpoint")
    out = deploy_triton.python_func(repo=artifact(dsl.Model, repo), endpoint=endpoint, deploy_target="kubernetes",
                                    storage_uri="pvc://triton/lowres", namespace="ml", gpus=1)
    assert out.http_url == "lowres-ocr-triton.ml.svc.cluster.local:8000"
    uploaded = tmp_path / "workspace" / "triton" / "lowres"
    assert (uploaded / "recognizer" / "1" / "model.onnx").is_file()
    assert (uploaded / "detector" / "1" / "model.onnx").is_file() and (uploaded / "lowres_ocr_page" / "1" / "model.py").is_file()
    assert json.loads((tmp_path / "endpoint").read_text())["models"][:4] == ["decode", "detector", "lowres_ocr", "lowres_ocr_page"]
    posts = apiserver.calls("PATCH")
    assert [p.body["kind"] for p in posts] == ["Deployment", "Service"]
    for p in posts:
        schemas.validate(p.body)
    args = posts[0].body["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--model-repository={tmp_path / 'workspace'}/triton/lowres" in args
