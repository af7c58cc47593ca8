from __future__ import annotations

import importlib.util

import pytest
from kfp import dsl

from components.conftest import artifact
from components.convert_tensorrt.component import convert_tensorrt


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT installed: the skip path does not apply")
def test_unit_skips_without_tensorrt(onnx_dir, tmp_path):
    """Here (no GPU, no tensorrt): the CLI exits 69 and the component reports 'not built' instead of failing."""
    plan = artifact(dsl.Model, tmp_path / "plan")
    built = convert_tensorrt.python_func(onnx_model=artifact(dsl.Model, onnx_dir), plan=plan)
    assert built is False and plan.metadata["built"] is False
    assert "TensorRT" in plan.metadata["reason"] and not (tmp_path / "plan" / "model.plan").exists()


def test_unit_fails_on_missing_onnx(tmp_path):
    with pytest.raises(RuntimeError, match="exit 2"):
        convert_tensorrt.python_func(onnx_model=artifact(dsl.Model, tmp_path / "nothing"), plan=artifact(dsl.Model, tmp_path / "p"))
