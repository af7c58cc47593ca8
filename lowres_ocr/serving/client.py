"""A small tritonclient wrapper for the ``lowres_ocr`` ensemble, over HTTP or gRPC."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Literal

import numpy as np

from lowres_ocr.serving.configs import ENSEMBLE

Protocol = Literal["http", "grpc"]


@dataclass(frozen=True)
class Prediction:
    text: str
    confidence: float


class OcrClient:
    """``with OcrClient("127.0.0.1:8000", "http") as c: c.predict(png_bytes)``.

    Errors from the server surface as ``tritonclient.utils.InferenceServerException`` (its ``status()``
    is the HTTP code as a string, e.g. "400", or the gRPC code name, e.g. "StatusCode.INVALID_ARGUMENT").
    """

    def __init__(self, url: str, protocol: Protocol = "http", model: str = ENSEMBLE, timeout: float = 60.0) -> None:
        self.protocol = protocol
        self.model = model
        self.timeout = timeout
        if protocol == "http":
            import tritonclient.http as module
            self._client = module.InferenceServerClient(url, connection_timeout=timeout, network_timeout=timeout)
        elif protocol == "grpc":
            import tritonclient.grpc as module  # type: ignore[no-redef]
            self._client = module.InferenceServerClient(url)
        else:
            raise ValueError(f"protocol must be 'http' or 'grpc', got {protocol!r}")
        self._module = module

    def is_ready(self) -> bool:
        return bool(self._client.is_model_ready(self.model))

    def infer_raw(self, images: np.ndarray, input_name: str = "image", datatype: str = "BYTES") -> dict[str, np.ndarray]:
        """Send any array as the ensemble input (used to test wrong dtype/shape); returns the outputs."""
        inp = self._module.InferInput(input_name, list(images.shape), datatype)
        if self.protocol == "http":
            inp.set_data_from_numpy(images, binary_data=True)
            outputs = [self._module.InferRequestedOutput(n, binary_data=True) for n in ("text", "confidence")]
            result = self._client.infer(self.model, [inp], outputs=outputs, timeout=int(self.timeout))
        else:
            inp.set_data_from_numpy(images)
            outputs = [self._module.InferRequestedOutput(n) for n in ("text", "confidence")]
            result = self._client.infer(self.model, [inp], outputs=outputs, client_timeout=self.timeout)
        return {"text": result.as_numpy("text"), "confidence": result.as_numpy("confidence")}

    def predict_batch(self, images: list[bytes]) -> list[Prediction]:
        """One request holding all ``images`` (a bad image fails the whole request)."""
        arr = np.array([[bytes(b)] for b in images], dtype=np.object_).reshape(len(images), 1)
        out = self.infer_raw(arr)
        texts = out["text"].reshape(-1)
        confs = out["confidence"].reshape(-1)
        return [
            Prediction(t.decode("utf-8") if isinstance(t, bytes) else str(t), float(c)) for t, c in zip(texts, confs)
        ]

    def predict(self, image: bytes) -> Prediction:
        return self.predict_batch([image])[0]

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "OcrClient":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
