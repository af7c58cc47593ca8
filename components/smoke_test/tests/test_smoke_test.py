from __future__ import annotations

import json

import pytest
from kfp import dsl

from components.conftest import artifact
from components.smoke_test.component import smoke_test
from lowres_ocr.serving.steps import build_triton_repo, deploy_local, stop_local


@pytest.fixture
def server(onnx_dir, tmp_path):
    repo = tmp_path / "repo"
    build_triton_repo(onnx_dir / "model.onnx", repo, None, local=True)
    info = deploy_local(repo, tmp_path / "server")
    (tmp_path / "endpoint").write_text(json.dumps(info))
    yield tmp_path / "endpoint"
    stop_local(info)


def test_unit_answers_equal_the_evaluation(server, evaluation, tmp_path):
    pred, _ = evaluation
    result = artifact(dsl.Metrics, tmp_path / "result")
    assert smoke_test.python_func(endpoint=artifact(dsl.Artifact, server), predictions=artifact(dsl.Dataset, pred), result=result)
    assert result.metadata == {"http_matched": 12.0, "grpc_matched": 12.0, "crops": 12.0}


def test_unit_fails_on_a_different_answer(server, evaluation, tmp_path):
    pred, _ = evaluation
    altered = tmp_path / "altered"
    import shutil

    shutil.copytree(pred, altered)
    expected = json.loads((altered / "smoke_expected.json").read_text())
    first = sorted(expected)[0]
    expected[first] = expected[first] + "x"
    (altered / "smoke_expected.json").write_text(json.dumps(expected))
    with pytest.raises(RuntimeError, match="1 of 12 predictions differ"):
        smoke_test.python_func(endpoint=artifact(dsl.Artifact, server), predictions=artifact(dsl.Dataset, altered),
                               result=artifact(dsl.Metrics, tmp_path / "r"))
