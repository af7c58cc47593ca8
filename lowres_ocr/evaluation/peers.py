"""Other OCR engines run beside lowres-ocr on the same crops and the same protocol.

- ``rapidocr``: the PP-OCR recognizer shipped in the rapidocr wheel (ONNX Runtime, offline), recognition
  only: the crop goes straight to ``RapidOCR.recognize_txt`` (no detection, no angle classifier).
- ``tesseract``: tesseract-ocr, ``--psm 7`` (the image is a single text line), one process per batch
  (pytesseract finds the binary and its version), English model;
- ``tesseract-chi_sim``: the same with the simplified Chinese model (Debian's tesseract-ocr-chi-sim), for
  Chinese and mixed express-sheet lines.

Peers see the image as stored (no resize to 16×64): mode ``lr`` is the LR image of a pair, ``hr`` the
HR image or the word crop. A peer whose package or binary is missing raises :class:`PeerUnavailable`
with a message saying what to install; the evaluation then skips it and says so.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from lowres_ocr.core.decoding import Decoded

PEERS = ("rapidocr", "tesseract", "tesseract-chi_sim")


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
    modes = ("lr", "hr")

    def __init__(self, lang: str = "eng") -> None:
        self.name = "tesseract" if lang == "eng" else f"tesseract-{lang}"
        self.config = f"--psm 7 -l {lang}"
        if importlib.util.find_spec("pytesseract") is None:
            raise PeerUnavailable("pytesseract is not installed (pip install pytesseract, or the 'peers' extra)")
        import pytesseract

        try:
            self.version = str(pytesseract.get_tesseract_version())
        except (pytesseract.TesseractNotFoundError, OSError) as err:
            raise PeerUnavailable(f"the tesseract binary is not installed or not on PATH "
                                  f"(apt-get install tesseract-ocr): {str(err).splitlines()[0]}") from None
        self._tess = pytesseract
        if lang not in pytesseract.get_languages(config=""):
            package = "tesseract-ocr-" + lang.replace("_", "-").lower()
            raise PeerUnavailable(f"tesseract has no {lang!r} language data (apt-get install {package})")

    def predict(self, images: list[Image.Image], mode: str, batch_size: int) -> list[Decoded]:
        step = max(1, batch_size)
        return [d for i in range(0, len(images), step) for d in self._run(images[i:i + step])]

    def _run(self, images: list[Image.Image]) -> list[Decoded]:
        """One tesseract process for a whole batch: a list file of PNGs in, TSV out (``page_num`` = the image).

        Starting tesseract (loading its model) costs far more than reading one small crop: per-image calls run at
        ~7 crops/s here, a batch at ~90, with the same answers (each image is its own page).
        """
        if not images:
            return []
        words: list[list[tuple[str, float]]] = [[] for _ in images]
        with tempfile.TemporaryDirectory(prefix="lowres-ocr-tesseract-") as tmp:
            paths = []
            for i, im in enumerate(images):
                paths.append(os.path.join(tmp, f"{i:06d}.png"))
                im.convert("RGB").save(paths[-1])
            Path(tmp, "list.txt").write_text("\n".join(paths) + "\n", encoding="utf-8")
            cmd = [self._tess.pytesseract.tesseract_cmd, os.path.join(tmp, "list.txt"), os.path.join(tmp, "out"),
                   *self.config.split(), "tsv"]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_THREAD_LIMIT="1"))
            tsv = Path(tmp, "out.tsv")
            if proc.returncode != 0 or not tsv.is_file():
                raise RuntimeError(f"tesseract failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
            rows = tsv.read_text(encoding="utf-8").splitlines()[1:]
        for row in rows:  # level page block par line word left top width height conf text
            fields = row.split("\t")
            if len(fields) >= 12 and fields[0] == "5" and fields[11].strip():
                words[int(fields[1]) - 1].append((fields[11], float(fields[10])))
        out = []
        for found in words:
            text = "".join(w for w, _ in found)  # the charset has no space: words are joined
            conf = float(np.mean([max(c, 0.0) for _, c in found]) / 100.0) if found else 0.0
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
    if name == "tesseract-chi_sim":
        return TesseractPeer("chi_sim")
    raise ValueError(f"unknown peer {name!r} (known: {', '.join(PEERS)})")
