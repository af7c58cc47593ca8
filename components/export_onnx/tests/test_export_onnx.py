from __future__ import annotations

import onnx
from kfp import dsl

from components.conftest import artifact
from components.export_onnx.component import export_onnx


def test_unit_export_with_parity(model_dir, data_dir, tmp_path):
    out = artifact(dsl.Model, tmp_path / "onnx")
    export_onnx.python_func(model=artifact(dsl.Model, model_dir), data=artifact(dsl.Dataset, data_dir), onnx_model=out,
                            parity_set="svt_test", parity_count=20)
    graph = onnx.load(str(tmp_path / "onnx" / "model.onnx"))
    onnx.checker.check_model(graph)
    assert [i.name for i in graph.graph.input] == ["lr"]
    assert out.metadata["crops"] == 20 and "parity" in out.metadata
