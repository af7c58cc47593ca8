"""Triton python backend model ``decode``: per-step class probabilities → text + confidence.

Inputs ``best`` INT32 [B, T] and ``best_prob`` FP32 [B, T] (the recognizer's best class per step and its
probability, ``lowres_ocr.core.decoding.decode_best``), or for a graph exported without them ``probs`` FP32
[B, T, C]; outputs ``text`` TYPE_STRING [B, 1] (UTF-8) and ``confidence`` FP32
[B, 1] (mean probability of the emitted characters), by ``lowres_ocr.core.decoding.decode`` imported from
the ``vendor/`` copy next to this file (numpy only; lowres_ocr need not be installed). Config parameter
``decoder``: ``ctc`` (class 0 = blank) or ``attention`` (class 0 = end of sequence), from the ONNX metadata;
the model's charset (one symbol per line, symbol i = class i + 1) is ``charset.txt`` next to this file.
All requests of a dynamic batch are decoded together.
"""

import json
import os
import sys

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor"))

from lowres_ocr.core.charset import Charset  # noqa: E402  (vendored copy)
from lowres_ocr.core.decoding import decode, decode_best  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.decoder = params.get("decoder", "ctc")
        self.best = any(i["name"] == "best" for i in config.get("input", []))
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "charset.txt"), encoding="utf-8") as fh:
            self.charset = Charset.from_text(params.get("charset_name", "custom"), fh.read())
        # an unknown decoder or charset fails at load, not per request
        decode(np.zeros((1, 1, self.charset.num_classes), np.float32), self.decoder, self.charset)

    def execute(self, requests):
        if self.best:
            arrays = [pb_utils.get_input_tensor_by_name(r, "best").as_numpy() for r in requests]
            probs = [pb_utils.get_input_tensor_by_name(r, "best_prob").as_numpy() for r in requests]
            decoded = decode_best(np.concatenate(arrays), np.concatenate(probs), self.decoder, self.charset) if arrays else []
        else:
            arrays = [pb_utils.get_input_tensor_by_name(r, "probs").as_numpy() for r in requests]
            decoded = decode(np.concatenate(arrays), self.decoder, self.charset) if arrays else []
        responses = []
        start = 0
        for arr in arrays:
            part = decoded[start : start + arr.shape[0]]
            start += arr.shape[0]
            text = np.array([[d.text.encode("utf-8")] for d in part], dtype=np.object_).reshape(-1, 1)
            conf = np.array([[d.confidence] for d in part], dtype=np.float32).reshape(-1, 1)
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[pb_utils.Tensor("text", text), pb_utils.Tensor("confidence", conf)]
                )
            )
        return responses
