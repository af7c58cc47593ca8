"""Asking the served page endpoint (``lowres_ocr_page``) over HTTP or gRPC."""

from __future__ import annotations

import numpy as np

from lowres_ocr.page.reader import Region
from lowres_ocr.serving.client import OcrClient, Protocol
from lowres_ocr.serving.configs import PAGE

OUTPUTS = ("points", "text", "confidence")


class PageClient(OcrClient):
    """``with PageClient("127.0.0.1:8000") as c: c.read(jpeg_bytes)`` → regions in reading order (no word boxes).

    Server errors surface as ``tritonclient.utils.InferenceServerException`` (400 / INVALID_ARGUMENT for a bad image).
    """

    def __init__(self, url: str, protocol: Protocol = "http", model: str = PAGE, timeout: float = 120.0) -> None:
        super().__init__(url, protocol, model, timeout)

    def read(self, data: bytes) -> list[Region]:
        http = self.protocol == "http"
        binary = {"binary_data": True} if http else {}
        request = self._module.InferInput("image", [1], "BYTES")
        request.set_data_from_numpy(np.array([bytes(data)], dtype=np.object_), **binary)
        wanted = [self._module.InferRequestedOutput(name, **binary) for name in OUTPUTS]
        deadline = {"timeout": int(self.timeout)} if http else {"client_timeout": self.timeout}
        result = self._client.infer(self.model, [request], outputs=wanted, **deadline)
        points = result.as_numpy("points").reshape(-1, 4, 2)
        texts = result.as_numpy("text").reshape(-1)
        confidences = result.as_numpy("confidence").reshape(-1)
        return [Region(p, t.decode("utf-8") if isinstance(t, bytes) else str(t), float(c))
                for p, t, c in zip(points, texts, confidences)]
