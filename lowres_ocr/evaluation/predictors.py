"""Everything that turns crops into text behind one interface: a checkpoint, an ONNX file, a Triton endpoint.

``Predictor.predict(images, mode, batch_size)`` returns one :class:`~lowres_ocr.core.decoding.Decoded` per PIL
image. Modes (CONTRACTS.md): ``sr`` (LR image → the model's input geometry → SR → recognizer), ``bicubic`` (the
same, bicubic upsampling instead of SR) and ``hr`` (the HR image or word crop → the recognizer's input). The exported
graph and the Triton ensemble hold the deployed path only: there ``sr`` and ``hr`` are that path given the LR or the
HR image. Peers (lowres_ocr.evaluation.peers) read the image as it is (modes ``lr`` and ``hr`` say which image of a
pair they were given).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from lowres_ocr.core.decoding import Decoded
from lowres_ocr.core.geometry import lr_batch


@runtime_checkable
class Predictor(Protocol):
    name: str
    modes: tuple[str, ...]

    def predict(self, images: list[Image.Image], mode: str, batch_size: int) -> list[Decoded]: ...

    def super_resolve(self, images: list[Image.Image], batch_size: int) -> np.ndarray | None:
        """SR images float32 [N, 3, 32, 128] in [0, 1], or None when the predictor cannot give them."""
        ...


def _check_mode(p: Predictor, mode: str) -> None:
    if mode not in p.modes:
        raise ValueError(f"{p.name} supports modes {p.modes}, not {mode!r}")


class TorchPredictor:
    """A checkpoint through ``lowres_ocr.network.inference.Recognizer`` (CPU or GPU)."""

    modes = ("sr", "bicubic", "hr")

    def __init__(self, weights: str | Path, device: str = "cpu", beam_width: int = 0) -> None:
        from lowres_ocr.network.inference import Recognizer

        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"weights {path} not found")
        self.recognizer = Recognizer.load(path, device)
        self.geometry = self.recognizer.model.geometry
        self.beam_width = beam_width
        self.name = f"lowres-ocr ({path.name})"
        self.source = str(path)
        self.device = str(device)

    def predict(self, images: list[Image.Image], mode: str, batch_size: int) -> list[Decoded]:
        _check_mode(self, mode)
        return self.recognizer.predict(images, mode=mode, batch_size=batch_size, beam_width=self.beam_width)  # type: ignore[arg-type]

    def super_resolve(self, images: list[Image.Image], batch_size: int) -> np.ndarray:
        return self.recognizer.super_resolve(images, batch_size=batch_size)


class OnnxPredictor:
    """An exported ONNX file through onnxruntime: input ``lr``, outputs ``probs`` and ``sr``."""

    modes = ("sr", "hr")  # the deployed path reading the LR image (sr) or the HR image / word crop (hr)

    def __init__(self, onnx_path: str | Path, threads: int = 0) -> None:
        import onnxruntime as ort

        from lowres_ocr.export.onnx_export import model_settings, read_metadata

        path = Path(onnx_path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model {path} not found")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        metadata = read_metadata(path)
        self.decoder = metadata.get("decoder", "ctc")
        self.charset, self.geometry = model_settings(metadata)
        self.name = f"lowres-ocr ONNX ({path.name})"
        self.source = str(path)
        self.device = self.session.get_providers()[0]

    def _run(self, images: list[Image.Image], batch_size: int, output: str) -> np.ndarray:
        outs = [self.session.run([output], {"lr": lr_batch(images[i:i + batch_size], self.geometry)})[0]
                for i in range(0, len(images), batch_size)]
        return np.concatenate(outs) if outs else np.zeros((0,), dtype=np.float32)

    def predict(self, images: list[Image.Image], mode: str, batch_size: int) -> list[Decoded]:
        from lowres_ocr.core.decoding import decode

        _check_mode(self, mode)  # sr and hr differ only in which image the caller passes
        return decode(self._run(images, batch_size, "probs"), self.decoder, self.charset) if images else []

    def super_resolve(self, images: list[Image.Image], batch_size: int) -> np.ndarray:
        return self._run(images, batch_size, "sr")


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


class TritonPredictor:
    """A running Triton server's ``lowres_ocr`` ensemble (encoded image bytes in, text + confidence out).

    Images are sent as lossless PNG, so the server decodes exactly the pixels the other paths see.
    """

    modes = ("sr", "hr")  # the deployed path reading the LR image (sr) or the HR image / word crop (hr)

    def __init__(self, url: str, protocol: str = "http", model: str | None = None) -> None:
        from lowres_ocr.serving.client import OcrClient

        kwargs = {"model": model} if model else {}
        self.client = OcrClient(url, protocol, **kwargs)  # type: ignore[arg-type]
        try:
            ready = self.client.is_ready()
        except Exception as err:  # tritonclient raises its own exception types (connection refused, ...)
            self.client.close()
            raise ConnectionError(f"Triton at {url} ({protocol}) is not reachable: {str(err).splitlines()[0]}") from None
        if not ready:
            self.client.close()
            raise ConnectionError(f"Triton at {url} ({protocol}): model {self.client.model!r} is not ready")
        self.name = f"lowres-ocr Triton ({protocol}://{url})"
        self.source = f"{protocol}://{url}/{self.client.model}"
        self.device = "triton"

    def predict(self, images: list[Image.Image], mode: str, batch_size: int) -> list[Decoded]:
        _check_mode(self, mode)  # sr and hr differ only in which image the caller passes
        out: list[Decoded] = []
        for i in range(0, len(images), batch_size):
            preds = self.client.predict_batch([png_bytes(im) for im in images[i:i + batch_size]])
            out += [Decoded(p.text, p.confidence, []) for p in preds]
        return out

    def super_resolve(self, images: list[Image.Image], batch_size: int) -> None:
        return None  # the ensemble returns text only

    def close(self) -> None:
        self.client.close()
