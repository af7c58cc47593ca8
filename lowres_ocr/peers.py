"""Other OCR engines run beside lowres-ocr on the same crops and the same protocol.

- ``rapidocr``: the PP-OCR recognizer shipped in the rapidocr wheel (ONNX Runtime, offline), recognition
  only: the crop goes straight to ``RapidOCR.recognize_txt`` (no detection, no angle classifier).
- ``tesseract``: tesseract-ocr through pytesseract, ``--psm 7`` (the image is a single text line).

Peers see the image as stored (no resize to 16×64): mode ``lr`` is the LR image of a pair, ``hr`` the
HR image or the word crop. A peer whose package or binary is missing raises :class:`PeerUnavailable`
with a message saying what to install; the evaluation then skips it and says so.
"""

from __future__ import annotations

import importlib.util

import numpy as np
from PIL import Image

from lowres_ocr.decoding import Decoded

PEERS = ("rapidocr", "tesseract")


class PeerUnavailable(RuntimeError):
    """The peer cannot run here (not installed); the message says why."""


class RapidOcrPeer:
    name = "rapidocr"
    modes = ("lr", "hr")

    def __init__(self, threads: int = 0) -> None:
        if importlib.util.find_spec("rapidocr") is None:
            raise PeerUnavailable("rapidocr is not installed (pip install rapidocr, or the 'peers' extra)")
        from rapidocr import RapidOCR

        params = {"Global.log_level": "error", "Global.use_det": False, "Global.use_cls": False,
                  "Rec.rec_batch_num": 64,
                  "EngineConfig.onnxruntime.intra_op_num_threads": threads if threads > 0 else -1}
        self.engine = RapidOCR(params=params)

    def predict(self, images: list[Image.Image], mode: str, batch_size: int) -> list[Decoded]:
        if not images:
            return []
        # rapidocr reads OpenCV-style BGR uint8 arrays
        arrays = [np.ascontiguousarray(np.asarray(im.convert("RGB"))[:, :, ::-1]) for im in images]
        out = self.engine.recognize_txt(arrays)
        return [Decoded(str(t), float(s), []) for t, s in zip(out.txts, out.scores)]

    def super_resolve(self, images: list[Image.Image], batch_size: int) -> None:
        return None


class TesseractPeer:
    name = "tesseract"
    modes = ("lr", "hr")
    config = "--psm 7"

    def __init__(self) -> None:
        if importlib.util.find_spec("pytesseract") is None:
            raise PeerUnavailable("pytesseract is not installed (pip install pytesseract, or the 'peers' extra)")
        import pytesseract

        try:
            self.version = str(pytesseract.get_tesseract_version())
        except (pytesseract.TesseractNotFoundError, OSError) as err:
            raise PeerUnavailable(f"the tesseract binary is not installed or not on PATH "
                                  f"(apt-get install tesseract-ocr): {str(err).splitlines()[0]}") from None
        self._tess = pytesseract

    def predict(self, images: list[Image.Image], mode: str, batch_size: int) -> list[Decoded]:
        out = []
        for im in images:
            data = self._tess.image_to_data(im.convert("RGB"), config=self.config, output_type=self._tess.Output.DICT)
            words = [(w, float(c)) for w, c in zip(data["text"], data["conf"]) if str(w).strip()]
            text = "".join(w for w, _ in words)  # the charset has no space: words are joined
            conf = float(np.mean([max(c, 0.0) for _, c in words]) / 100.0) if words else 0.0
            out.append(Decoded(text, conf, []))
        return out

    def super_resolve(self, images: list[Image.Image], batch_size: int) -> None:
        return None


def load_peer(name: str) -> RapidOcrPeer | TesseractPeer:
    """Construct a peer by name; raises PeerUnavailable (not installed) or ValueError (unknown name)."""
    if name == "rapidocr":
        return RapidOcrPeer()
    if name == "tesseract":
        return TesseractPeer()
    raise ValueError(f"unknown peer {name!r} (known: {', '.join(PEERS)})")
