"""Reading a whole page: detect the text regions, crop them in reading order, recognise them with our model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lowres_ocr.core.decoding import Decoded, decode
from lowres_ocr.core.images import decode_image
from lowres_ocr.page.crop import ordered_crops, sub_quad
from lowres_ocr.page.detect import Detector, DetectorSettings
from lowres_ocr.page.words import WordSpan, split_words
from lowres_ocr.serving.image_input import ImageLimits, check_header


@dataclass
class Region:
    """One text line (or word) of a page: its quad in image px, clockwise from the text's top-left corner."""

    points: np.ndarray  # float32 [4, 2]
    text: str
    confidence: float
    det_score: float = 0.0
    words: list["Region"] = field(default_factory=list)

    def to_json(self, words: bool = False) -> dict[str, Any]:
        """The JSON form: points rounded to 0.1 px; ``words`` only when asked for."""
        out: dict[str, Any] = {
            "points": [[round(float(x), 1), round(float(y), 1)] for x, y in self.points],
            "text": self.text,
            "confidence": round(float(self.confidence), 4),
        }
        if words:
            out["words"] = [w.to_json() for w in self.words]
        return out


def load_page(data: bytes, name: str, limits: ImageLimits = ImageLimits()) -> np.ndarray:
    """Encoded image → RGB uint8 [H, W, 3], with the serving limits; raises BadImageError naming ``name``."""
    check_header(data, limits, name)
    return np.asarray(decode_image(data, name), dtype=np.uint8)


def _uniform_steps(n: int, steps_total: int, content_frac: float) -> list[int]:
    """Evenly spaced steps over the content for decoders without an alignment (attention)."""
    return [int((i + 0.5) / max(1, n) * content_frac * steps_total) for i in range(n)]


def word_regions(quad: np.ndarray, crop_size: tuple[int, int], decoded: Decoded, steps_total: int,
                 recognizer: Any) -> list[Region]:
    """The words of one recognised line as regions: split at spaces, placed along the line's quad."""
    geometry = recognizer.model.geometry
    content = geometry.content_width(crop_size)
    steps = decoded.steps
    if len(steps) != len(decoded.text):
        steps = _uniform_steps(len(decoded.text), steps_total, content / geometry.width)
    spans: list[WordSpan] = split_words(decoded.text, steps, decoded.char_confidences, steps_total,
                                        geometry.width, content)
    return [Region(sub_quad(quad, s.start, s.end), s.text, s.confidence) for s in spans]


class PageReader:
    """Detector + our recognizer: ``read(rgb)`` → regions in reading order."""

    def __init__(self, recognizer: Any, detector: Detector | None = None, batch_size: int = 64):
        self.recognizer = recognizer
        self.detector = detector or Detector()
        self.batch_size = batch_size

    @classmethod
    def load(cls, weights: str | Path, settings: DetectorSettings = DetectorSettings(),
             detector_path: str | Path | None = None, batch_size: int = 64) -> "PageReader":
        from lowres_ocr.network.inference import Recognizer

        return cls(Recognizer.load(weights), Detector(detector_path, settings), batch_size)

    def regions(self, rgb: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], list[Image.Image]]:
        """Detection scores in reading order, each quad in its crop's orientation, and the crops."""
        quads, scores = self.detector.detect(rgb)
        order, oriented, crops = ordered_crops(rgb, quads)
        return scores[order], oriented, crops

    def recognise(self, crops: list[Image.Image]) -> tuple[list[Decoded], int]:
        """Greedy decoding of all crops in batches, and the number of CTC steps per crop."""
        if not crops:
            return [], 0
        model = self.recognizer.model
        probs = self.recognizer.probabilities(crops, mode="sr", batch_size=self.batch_size)
        return decode(probs, model.decoder, model.charset), int(probs.shape[1])

    def read(self, rgb: np.ndarray) -> list[Region]:
        """All text regions of the page ``rgb`` [H, W, 3] in reading order, each with its words."""
        scores, oriented, crops = self.regions(rgb)
        decoded, steps_total = self.recognise(crops)
        out = []
        for quad, score, crop, dec in zip(oriented, scores, crops, decoded):
            words = word_regions(quad, crop.size, dec, steps_total, self.recognizer)
            out.append(Region(quad, dec.text, dec.confidence, float(score), words))
        return out
