"""Triton python backend model ``recognizer`` (local variant): ONNX Runtime on CPU.

The local tritonserver (nvidia-pytriton wheel) has only the python backend, so ``--local`` repositories
run the exported ``model.onnx`` here instead of the ``onnxruntime_onnx`` backend used in production.
Input ``lr`` FP32 [B, 3, H, W] (the model's input geometry); outputs ``probs`` [B, T, C] (C = the classes of its
charset) and ``sr`` [B, 3, 2H, 2W] (only the requested ones are computed). All requests of a dynamic batch go through one ``session.run``.
Config parameters: ``onnx_file`` (default model.onnx), ``intra_op_threads`` (default 1).
"""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        path = os.path.join(args["model_repository"], args["model_version"], params.get("onnx_file", "model.onnx"))
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(params.get("intra_op_threads", "1"))
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def execute(self, requests):
        arrays = [pb_utils.get_input_tensor_by_name(r, "lr").as_numpy() for r in requests]
        wanted = [r.requested_output_names() for r in requests]
        names = [n for n in self.output_names if any(n in w for w in wanted)] or self.output_names
        batch = np.ascontiguousarray(np.concatenate(arrays), dtype=np.float32)
        results = dict(zip(names, self.session.run(names, {self.input_name: batch})))
        responses = []
        start = 0
        for arr, want in zip(arrays, wanted):
            stop = start + arr.shape[0]
            tensors = [pb_utils.Tensor(n, np.ascontiguousarray(results[n][start:stop])) for n in names if n in want or not want]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start = stop
        return responses
