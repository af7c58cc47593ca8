from __future__ import annotations

import json
import shutil

import pytest
from kfp import dsl

from components.conftest import artifact
from components.smoke_test.component import smoke_test
from lowres_ocr.serving.steps import build_triton_repo, deploy_local, stop_local


@pytest.fixture(scope="module")
def server(onnx_dir, tmp_path_factory):
    """The tiny model's repository with the page endpoint (the pipeline's default), served by a local tritonserver."""
    tmp = tmp_path_factory.mktemp("smoke")
    repo = tmp / "repo"
    build_triton_repo(onnx_dir / "model.onnx", repo, None, local=True)
    info = deploy_local(repo, tmp / "server")
    (tmp / "endpoint").write_text(json.dumps(info))
    yield tmp / "endpoint", repo
    stop_local(info)


def _run(server, predictions, model_dir, result, repo=None):
    endpoint, served_repo = server
    return smoke_test.python_func(endpoint=artifact(dsl.Artifact, endpoint), predictions=artifact(dsl.Dataset, predictions),
                                  repo=artifact(dsl.Model, repo or served_repo), model=artifact(dsl.Model, model_dir),
                                  result=result)


def test_unit_answers_equal_the_evaluation_and_the_page_reading(server, evaluation, model_dir, tmp_path):
    pred, _ = evaluation
    result = artifact(dsl.Metrics, tmp_path / "result")
    assert _run(server, pred, model_dir, result)
    assert result.metadata == {"http_matched": 12.0, "grpc_matched": 12.0, "crops": 12.0,
                               "page_http_matched": 2.0, "page_grpc_matched": 2.0, "pages": 2.0}


def test_unit_fails_on_a_different_answer(server, evaluation, model_dir, tmp_path):
    pred, _ = evaluation
    altered = tmp_path / "altered"
    shutil.copytree(pred, altered)
    expected = json.loads((altered / "smoke_expected.json").read_text())
    first = sorted(expected)[0]
    expected[first] = expected[first] + "x"
    (altered / "smoke_expected.json").write_text(json.dumps(expected))
    with pytest.raises(RuntimeError, match="1 of 12 predictions differ"):
        _run(server, altered, model_dir, artifact(dsl.Metrics, tmp_path / "r"))


def test_unit_fails_on_a_different_page_box(server, evaluation, model_dir, tmp_path, monkeypatch):
    """A served box 2 px off on one sheet over HTTP fails the step, naming the protocol, the sheet and the line."""
    from lowres_ocr.page.client import PageClient
    from lowres_ocr.page.smoke import smoke_pages

    pred, _ = evaluation
    upright = smoke_pages()["sheet_upright.png"]
    read = PageClient.read

    def shifted(self, data):
        regions = read(self, data)
        if data == upright and self.protocol == "http":
            regions[0].points = regions[0].points + 2.0
        return regions

    monkeypatch.setattr(PageClient, "read", shifted)
    with pytest.raises(RuntimeError, match=r"^smoke test failed: pages over http: sheet_upright.png: line 0 \(.*\): "
                                           r"box corners 2.00 px apart \(limit 1 px\)$"):
        _run(server, pred, model_dir, artifact(dsl.Metrics, tmp_path / "r"))


def test_unit_crops_only_without_the_page_endpoint(server, evaluation, model_dir, onnx_dir, tmp_path):
    """A repository built with page=False: the step checks crops only (the server's page model is not asked)."""
    pred, _ = evaluation
    crops_only = tmp_path / "crops_only"
    build_triton_repo(onnx_dir / "model.onnx", crops_only, None, local=True, page=False)
    result = artifact(dsl.Metrics, tmp_path / "result")
    assert _run(server, pred, model_dir, result, repo=crops_only)
    assert result.metadata == {"http_matched": 12.0, "grpc_matched": 12.0, "crops": 12.0}
