from __future__ import annotations

from kfp import dsl

from components.build_triton_repo.component import build_triton_repo
from components.conftest import artifact
from lowres_ocr.serving.repository import validate_repository


def test_unit_local_and_cluster_repositories(onnx_dir, tmp_path):
    local = artifact(dsl.Model, tmp_path / "local")
    build_triton_repo.python_func(onnx_model=artifact(dsl.Model, onnx_dir), repo=local, deploy_target="local")
    cluster = artifact(dsl.Model, tmp_path / "cluster")
    build_triton_repo.python_func(onnx_model=artifact(dsl.Model, onnx_dir), repo=cluster, deploy_target="kubernetes")
    for path in (tmp_path / "local", tmp_path / "cluster"):
        assert set(validate_repository(path)) == {"lowres_ocr", "preprocess", "recognizer", "decode"}
    assert 'backend: "python"' in (tmp_path / "local" / "recognizer" / "config.pbtxt").read_text()
    assert 'platform: "onnxruntime_onnx"' in (tmp_path / "cluster" / "recognizer" / "config.pbtxt").read_text()
    assert local.metadata["local"] is True and cluster.metadata["tensorrt"] is False
