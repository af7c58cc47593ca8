"""Triton python backend model ``detector`` (local variant): the PP-OCR text detector under ONNX Runtime on CPU.

The local tritonserver has only the python backend; production repositories serve the same ``model.onnx``
with ``onnxruntime_onnx``. Input ``x`` FP32 [1, 3, h, w] (h, w multiples of 32), output ``fetch_name_0``
FP32 [1, 1, h, w] (text probability). Pages differ in size, so each request runs on its own. The session is
built by the vendored ``lowres_ocr.page.detect.Detector``. Config parameter: ``intra_op_threads`` (default 1).
"""

import json
import os
import sys

import numpy as np
import triton_python_backend_utils as pb_utils

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "vendor"))

from lowres_ocr.page.detect import Detector  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        params = json.loads(args["model_config"]).get("parameters", {})
        threads = int(params.get("intra_op_threads", {}).get("string_value", "1"))
        self.detector = Detector(os.path.join(HERE, "model.onnx"), threads=threads)

    def execute(self, requests):
        responses = []
        for request in requests:
            x = np.ascontiguousarray(pb_utils.get_input_tensor_by_name(request, "x").as_numpy(), dtype=np.float32)
            prob = self.detector.session.run(None, {self.detector.input_name: x})[0]
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("fetch_name_0", prob)]))
        return responses
