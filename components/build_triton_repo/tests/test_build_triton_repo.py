from __future__ import annotations

from kfp import dsl

from components.build_triton_repo.component import build_triton_repo
from components.conftest import artifact
from lowres_ocr.serving.repository import validate_repository

ENSEMBLE = {"lowres_ocr", "preprocess", "recognizer", "decode"}
PAGE = {"detector", "lowres_ocr_page"}


def test_unit_local_and_cluster_repositories_with_the_page_endpoint(onnx_dir, tmp_path):
    local = artifact(dsl.Model, tmp_path / "local")
    build_triton_repo.python_func(onnx_model=artifact(dsl.Model, onnx_dir), repo=local, deploy_target="local")
    cluster = artifact(dsl.Model, tmp_path / "cluster")
    build_triton_repo.python_func(onnx_model=artifact(dsl.Model, onnx_dir), repo=cluster, deploy_target="kubernetes")
    for path in (tmp_path / "local", tmp_path / "cluster"):
        assert set(validate_repository(path)) == ENSEMBLE | PAGE  # the page endpoint is on by default
    assert 'backend: "python"' in (tmp_path / "local" / "recognizer" / "config.pbtxt").read_text()
    assert 'platform: "onnxruntime_onnx"' in (tmp_path / "cluster" / "recognizer" / "config.pbtxt").read_text()
    assert 'backend: "python"' in (tmp_path / "local" / "detector" / "config.pbtxt").read_text()
    assert 'platform: "onnxruntime_onnx"' in (tmp_path / "cluster" / "detector" / "config.pbtxt").read_text()
    assert not (tmp_path / "cluster" / "detector" / "1" / "model.py").exists()
    assert (tmp_path / "cluster" / "lowres_ocr_page" / "1" / "vendor" / "lowres_ocr" / "page" / "detect.py").is_file()
    assert local.metadata["local"] is True and cluster.metadata["tensorrt"] is False
    assert local.metadata["page"] is True and local.metadata["models"] == sorted(ENSEMBLE | PAGE)


def test_unit_page_off(onnx_dir, tmp_path):
    repo = artifact(dsl.Model, tmp_path / "repo")
    build_triton_repo.python_func(onnx_model=artifact(dsl.Model, onnx_dir), repo=repo, deploy_target="kserve", page=False)
    assert set(validate_repository(tmp_path / "repo")) == ENSEMBLE
    assert repo.metadata["page"] is False
