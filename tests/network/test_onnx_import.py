"""The ONNX interpreter against ONNX Runtime on a small graph using the operators PP-OCR needs."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from lowres_ocr.network.onnx_import import OnnxGraphModule


def _graph():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    b = rng.normal(size=(4,)).astype(np.float32)
    fc = rng.normal(size=(4, 5)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"), numpy_helper.from_array(fc, "fc"),
             numpy_helper.from_array(np.array([0, -1, 4], dtype=np.int64), "shape3")]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("HardSigmoid", ["c"], ["hs"], alpha=0.2, beta=0.5),
        helper.make_node("Mul", ["c", "hs"], ["act"]),
        helper.make_node("MaxPool", ["act"], ["mp"], kernel_shape=[2, 2], strides=[1, 1], auto_pad="SAME_UPPER"),
        helper.make_node("Shape", ["mp"], ["shp"]),
        helper.make_node("Transpose", ["mp"], ["t"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["t", "shape3"], ["seq"]),
        helper.make_node("ReduceMean", ["seq"], ["m"], axes=[-1]),
        helper.make_node("Sub", ["seq", "m"], ["centred"]),
        helper.make_node("Erf", ["centred"], ["e"]),
        helper.make_node("MatMul", ["e", "fc"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["y"], axis=2),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 3, 8, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])


def test_matches_onnxruntime_and_is_trainable():
    proto = _graph()
    module = OnnxGraphModule.from_onnx(proto)
    x = np.random.default_rng(1).random((2, 3, 8, 16), dtype=np.float32)
    ref = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    out = module(torch.from_numpy(x))
    assert np.abs(out.detach().numpy() - ref).max() < 1e-5
    out.sum().backward()
    assert all(p.grad is not None for p in module.parameters() if p.requires_grad)


def test_spec_rebuilds_without_the_onnx_file():
    proto = _graph()
    module = OnnxGraphModule.from_onnx(proto)
    again = OnnxGraphModule(module.spec)
    again.load_state_dict(module.state_dict())
    x = torch.rand(1, 3, 8, 16)
    assert torch.equal(again(x), module(x))


def test_unsupported_operator_is_named():
    proto = _graph()
    proto.graph.node[1].op_type = "Celu"
    with pytest.raises(NotImplementedError, match="Celu"):
        OnnxGraphModule.from_onnx(proto)
