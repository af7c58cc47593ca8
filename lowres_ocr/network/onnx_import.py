"""Run an ONNX graph as a trainable ``torch.nn.Module``.

Used to start the recognizer from the PP-OCR recognition weights that ship inside the ``rapidocr`` wheel
(an ONNX file). ``onnx2torch`` cannot convert that file (``SAME_UPPER`` padding) and pulls in torchvision,
so this module interprets the small set of operators such graphs use, keeping every floating-point
initializer as an ``nn.Parameter`` (fine-tunable) and integer shape constants as Python lists, so that
traced re-export keeps a dynamic batch axis.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Value = Any  # torch.Tensor, or a list of ints (a shape value)


def _attrs(node) -> dict[str, Any]:
    import onnx

    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _same_upper_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class OnnxGraphModule(nn.Module):
    """Interpret the nodes of an ONNX graph up to ``output`` (default: the graph's first output)."""

    SUPPORTED = {
        "Identity", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Erf", "Relu", "Sigmoid", "HardSigmoid",
        "Softmax", "ReduceMean", "MatMul", "Conv", "BatchNormalization", "MaxPool", "AveragePool",
        "Transpose", "Reshape", "Shape", "Slice", "Squeeze", "Unsqueeze", "Concat",
    }

    def __init__(self, spec: dict[str, Any]):
        """Build from a graph ``spec`` (see :meth:`spec_from_onnx`); parameters start uninitialised."""
        super().__init__()
        unsupported = sorted({n[0] for n in spec["nodes"]} - self.SUPPORTED)
        if unsupported:
            raise NotImplementedError(f"ONNX operators not supported by OnnxGraphModule: {unsupported}")
        self.input_name: str = spec["input"]
        self.output_name: str = spec["output"]
        self._nodes = [tuple(n) for n in spec["nodes"]]
        self._consts: dict[str, list] = dict(spec["consts"])
        self._param_key = {name: f"p{i}" for i, name in enumerate(spec["params"])}
        # batch-norm statistics are inputs like the weights in ONNX, but they are not trained here
        frozen = {i for op, ins, _, _ in self._nodes if op == "BatchNormalization" for i in ins[3:5]}
        self.params = nn.ParameterDict({
            self._param_key[name]: nn.Parameter(torch.empty(shape), requires_grad=math.prod(shape) > 1 and name not in frozen)
            for name, shape in spec["params"].items()
        })
        self._spec = spec

    @property
    def spec(self) -> dict[str, Any]:
        """Plain-Python description of the graph (no weights): stored in checkpoints."""
        return self._spec

    @staticmethod
    def spec_from_onnx(model_proto, output: str | None = None) -> dict[str, Any]:
        from onnx import numpy_helper

        graph = model_proto.graph
        out = output or graph.output[0].name
        nodes = OnnxGraphModule._needed_nodes(graph, out)
        used = {i for n in nodes for i in n.input}
        params: dict[str, list[int]] = {}
        consts: dict[str, list] = {}
        for init in graph.initializer:
            if init.name in used:
                arr = numpy_helper.to_array(init)
                if np.issubdtype(arr.dtype, np.floating):
                    params[init.name] = list(arr.shape)
                else:
                    consts[init.name] = arr.tolist()
        node_list = [(n.op_type, list(n.input), list(n.output), _attrs(n)) for n in nodes]
        return {"input": graph.input[0].name, "output": out, "nodes": node_list, "params": params, "consts": consts}

    @classmethod
    def from_onnx(cls, model_proto, output: str | None = None) -> "OnnxGraphModule":
        """Interpret ``model_proto`` up to ``output`` with its initializers loaded as parameters."""
        from onnx import numpy_helper

        module = cls(cls.spec_from_onnx(model_proto, output))
        weights = {t.name: t for t in model_proto.graph.initializer}
        with torch.no_grad():
            for name, key in module._param_key.items():
                module.params[key].copy_(torch.from_numpy(numpy_helper.to_array(weights[name]).astype(np.float32)))
        return module

    @staticmethod
    def _needed_nodes(graph, output: str):
        producers = {o: n for n in graph.node for o in n.output}
        if output not in producers:
            raise KeyError(f"no node produces {output!r}")
        needed, stack = set(), [output]
        while stack:
            name = stack.pop()
            node = producers.get(name)
            if node is None or id(node) in needed:
                continue
            needed.add(id(node))
            stack.extend(node.input)
        return [n for n in graph.node if id(n) in needed]

    # -- evaluation -------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env: dict[str, Value] = {self.input_name: x}
        for name, key in self._param_key.items():
            env[name] = self.params[key]
        env.update(self._consts)
        for op, ins, outs, attrs in self._nodes:
            args = [env[i] if i else None for i in ins]
            env[outs[0]] = getattr(self, f"_op_{op}")(args, attrs)
        return env[self.output_name]

    # element-wise
    def _op_Identity(self, a, at):
        return a[0]

    def _op_Add(self, a, at):
        return a[0] + a[1]

    def _op_Sub(self, a, at):
        return a[0] - a[1]

    def _op_Mul(self, a, at):
        return a[0] * a[1]

    def _op_Div(self, a, at):
        return a[0] / a[1]

    def _op_Pow(self, a, at):
        return torch.pow(a[0], a[1])

    def _op_Sqrt(self, a, at):
        return torch.sqrt(a[0])

    def _op_Erf(self, a, at):
        return torch.erf(a[0])

    def _op_Relu(self, a, at):
        return F.relu(a[0])

    def _op_Sigmoid(self, a, at):
        return torch.sigmoid(a[0])

    def _op_HardSigmoid(self, a, at):
        return torch.clamp(a[0] * at.get("alpha", 0.2) + at.get("beta", 0.5), 0.0, 1.0)

    def _op_Softmax(self, a, at):
        return torch.softmax(a[0], dim=at.get("axis", -1))

    def _op_ReduceMean(self, a, at):
        return a[0].mean(dim=at["axes"], keepdim=bool(at.get("keepdims", 1)))

    def _op_MatMul(self, a, at):
        return torch.matmul(a[0], a[1])

    # convolution and pooling
    def _op_Conv(self, a, at):
        x, w = a[0], a[1]
        b = a[2] if len(a) > 2 else None
        strides = at.get("strides", [1, 1])
        dil = at.get("dilations", [1, 1])
        if at.get("auto_pad", "NOTSET") == "SAME_UPPER":
            ph = _same_upper_pads(int(x.shape[2]), w.shape[2], strides[0], dil[0])
            pw = _same_upper_pads(int(x.shape[3]), w.shape[3], strides[1], dil[1])
            x = F.pad(x, (pw[0], pw[1], ph[0], ph[1]))
        else:
            p = at.get("pads", [0, 0, 0, 0])
            if p[0] == p[2] and p[1] == p[3]:
                return F.conv2d(x, w, b, strides, (p[0], p[1]), dil, at.get("group", 1))
            x = F.pad(x, (p[1], p[3], p[0], p[2]))
        return F.conv2d(x, w, b, strides, 0, dil, at.get("group", 1))

    def _op_BatchNormalization(self, a, at):
        x, scale, bias, mean, var = a
        return F.batch_norm(x, mean.detach(), var.detach(), scale, bias, False, 0.0, at.get("epsilon", 1e-5))

    def _op_MaxPool(self, a, at):
        x = a[0]
        k, s = at["kernel_shape"], at.get("strides", [1, 1])
        if at.get("auto_pad", "NOTSET") == "SAME_UPPER":
            ph = _same_upper_pads(int(x.shape[2]), k[0], s[0])
            pw = _same_upper_pads(int(x.shape[3]), k[1], s[1])
            x = F.pad(x, (pw[0], pw[1], ph[0], ph[1]), value=float("-inf"))
            return F.max_pool2d(x, k, s, 0, ceil_mode=bool(at.get("ceil_mode", 0)))
        p = at.get("pads", [0, 0, 0, 0])
        return F.max_pool2d(x, k, s, (p[0], p[1]), ceil_mode=bool(at.get("ceil_mode", 0)))

    def _op_AveragePool(self, a, at):
        p = at.get("pads", [0, 0, 0, 0])
        return F.avg_pool2d(a[0], at["kernel_shape"], at.get("strides"), (p[0], p[1]), bool(at.get("ceil_mode", 0)),
                            bool(at.get("count_include_pad", 0)))

    # shapes
    def _op_Transpose(self, a, at):
        return a[0].permute(*at["perm"])

    def _op_Shape(self, a, at):
        return [a[0].shape[i] for i in range(a[0].dim())]

    def _op_Reshape(self, a, at):
        x, target = a[0], a[1]
        if not isinstance(x, torch.Tensor):  # reshaping a shape value: [n] <-> n
            if isinstance(x, list) and len(target) == 0:
                return x[0]
            return x if isinstance(x, list) else [x]
        if isinstance(target, torch.Tensor):
            target = target.tolist()
        shape = [x.shape[i] if (d == 0 and not at.get("allowzero", 0)) else d for i, d in enumerate(target)]
        return x.reshape(shape)

    def _op_Slice(self, a, at):
        x, starts, ends = a[0], a[1], a[2]
        axes = a[3] if len(a) > 3 and a[3] is not None else list(range(len(starts)))
        steps = a[4] if len(a) > 4 and a[4] is not None else [1] * len(starts)
        if isinstance(x, list):
            assert axes == [0], "shape values are 1-D"
            return x[slice(starts[0], ends[0], steps[0])]
        index = [slice(None)] * x.dim()
        for st, en, ax, sp in zip(starts, ends, axes, steps):
            index[ax] = slice(st, min(en, int(x.shape[ax])), sp)
        return x[tuple(index)]

    def _op_Squeeze(self, a, at):
        x = a[0]
        if isinstance(x, list):
            return x[0]
        for ax in sorted(at["axes"], reverse=True):
            x = x.squeeze(ax)
        return x

    def _op_Unsqueeze(self, a, at):
        x = a[0]
        if not isinstance(x, torch.Tensor):
            return x if isinstance(x, list) else [x]
        for ax in sorted(at["axes"]):
            x = x.unsqueeze(ax)
        return x

    def _op_Concat(self, a, at):
        if any(isinstance(v, list) or not isinstance(v, torch.Tensor) for v in a):
            out: list = []
            for v in a:
                out.extend(v if isinstance(v, list) else [v])
            return out
        return torch.cat(a, dim=at["axis"])
