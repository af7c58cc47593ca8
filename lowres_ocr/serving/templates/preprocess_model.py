"""Triton python backend model ``preprocess``: encoded image bytes → normalized LR tensor.

Input ``image`` TYPE_STRING [B, 1] (PNG/JPEG/... bytes, any size and colour mode); output ``lr`` FP32
[B, 3, H, W] in [0, 1], computed by ``lowres_ocr.serving.image_input`` with the model's input geometry (config
parameters ``geometry_*``, ``lowres_ocr.core.geometry``). The helpers are imported from ``vendor/`` next to this file, copied there by
``lowres-ocr serve repo``, so the server's python needs only numpy and pillow, not lowres_ocr.
A bad image fails only its own request, with INVALID_ARG (HTTP 400, gRPC INVALID_ARGUMENT).
"""

import json
import os
import sys

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor"))

from lowres_ocr.core.images import BadImageError
from lowres_ocr.serving.image_input import ImageLimits, geometry_from_parameters, image_bytes_to_input  # noqa: E402


def _bad_request(message):
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, pb_utils.TritonError.INVALID_ARG))


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.limits = ImageLimits.from_parameters(params)
        self.geometry = geometry_from_parameters(params)

    def _convert(self, images):
        if images.size == 0:
            raise BadImageError("request holds no image")
        arrays = []
        for i, item in enumerate(images.reshape(-1)):
            if isinstance(item, str):
                item = item.encode("latin-1")
            if not isinstance(item, (bytes, bytearray)):
                raise BadImageError(f"image[{i}]: expected encoded image bytes, got {type(item).__name__}")
            arrays.append(image_bytes_to_input(item, self.limits, name=f"image[{i}]", geometry=self.geometry))
        return np.stack(arrays).astype(np.float32, copy=False)

    def execute(self, requests):
        responses = []
        for request in requests:
            images = pb_utils.get_input_tensor_by_name(request, "image").as_numpy()
            try:
                lr = self._convert(images)
            except BadImageError as err:
                responses.append(_bad_request(str(err)))
                continue
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("lr", lr)]))
        return responses
