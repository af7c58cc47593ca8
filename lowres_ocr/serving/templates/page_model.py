"""Triton python backend model ``lowres_ocr_page``: one encoded page in, its text lines out.

Input ``image`` TYPE_STRING [1]; outputs ``points`` FP32 [N, 4, 2] (each line's quadrilateral in image px,
clockwise from the text's top-left corner), ``text`` TYPE_STRING [N] (UTF-8) and ``confidence`` FP32 [N], in
reading order. Steps: the serving image limits (``image_input.check_header``), the detector input
(``page.detect.prepare``), the ``detector`` model through BLS, DB post-processing, perspective crops in reading
order, the crops' network input (the model's geometry), the ``recognizer`` model through BLS in chunks of at
most ``recognizer_max_batch`` (its dynamic batcher mixes the crops of concurrent pages), greedy decoding.
A bad image fails its own request with INVALID_ARG (HTTP 400, gRPC INVALID_ARGUMENT).
The helpers are the vendored copies under ``vendor/`` (numpy, PIL, OpenCV, pyclipper).
"""

import json
import os
import sys

import numpy as np
import triton_python_backend_utils as pb_utils

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "vendor"))

from lowres_ocr.core.charset import Charset  # noqa: E402
from lowres_ocr.core.decoding import decode  # noqa: E402
from lowres_ocr.core.images import BadImageError, decode_image  # noqa: E402
from lowres_ocr.page.crop import ordered_crops  # noqa: E402
from lowres_ocr.page.detect import DetectorSettings, db_boxes, prepare  # noqa: E402
from lowres_ocr.serving.image_input import ImageLimits, check_header, geometry_from_parameters  # noqa: E402


def _call(model, inputs, output):
    """One BLS request to ``model``; returns the numpy value of ``output``."""
    request = pb_utils.InferenceRequest(model_name=model, requested_output_names=[output],
                                        inputs=[pb_utils.Tensor(k, v) for k, v in inputs.items()])
    response = request.exec()
    if response.has_error():
        raise RuntimeError(f"{model}: {response.error().message()}")
    return pb_utils.get_output_tensor_by_name(response, output).as_numpy()


class TritonPythonModel:
    def initialize(self, args):
        params = {k: v["string_value"] for k, v in json.loads(args["model_config"]).get("parameters", {}).items()}
        self.settings = DetectorSettings.from_parameters(params)
        self.max_batch = int(params["recognizer_max_batch"])
        self.limits, self.geometry = ImageLimits.from_parameters(params), geometry_from_parameters(params)
        self.decoder = params["decoder"]
        with open(os.path.join(HERE, "charset.txt"), encoding="utf-8") as f:
            self.charset = Charset.from_text(params["charset_name"], f.read())

    def _read(self, data):
        check_header(data, self.limits, "image")
        rgb = np.asarray(decode_image(data, "image"), dtype=np.uint8)
        prob = _call("detector", {"x": prepare(rgb, self.settings)}, "fetch_name_0")
        quads, _ = db_boxes(prob, (rgb.shape[1], rgb.shape[0]), self.settings)
        _, oriented, crops = ordered_crops(rgb, quads)
        points = np.asarray(oriented, dtype=np.float32).reshape(-1, 4, 2)
        if not crops:
            return points, [], np.zeros((0,), np.float32)
        lr = self.geometry.batch(crops)
        probs = np.concatenate([_call("recognizer", {"lr": lr[i:i + self.max_batch]}, "probs")
                                for i in range(0, len(lr), self.max_batch)])
        decoded = decode(probs, self.decoder, self.charset)
        return points, [d.text for d in decoded], np.array([d.confidence for d in decoded], np.float32)

    def execute(self, requests):
        responses = []
        for request in requests:
            item = pb_utils.get_input_tensor_by_name(request, "image").as_numpy().reshape(-1)
            try:
                if item.size != 1 or not isinstance(item[0], (bytes, bytearray)):
                    raise BadImageError("image: expected one encoded image (bytes)")
                points, texts, conf = self._read(bytes(item[0]))
            except BadImageError as err:
                error = pb_utils.TritonError(str(err), pb_utils.TritonError.INVALID_ARG)
                responses.append(pb_utils.InferenceResponse(error=error))
                continue
            text = np.array([t.encode("utf-8") for t in texts], dtype=np.object_)
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("points", points), pb_utils.Tensor("text", text), pb_utils.Tensor("confidence", conf)]))
        return responses
