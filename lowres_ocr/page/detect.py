"""Text detection: the PP-OCR DB detector (ONNX Runtime) and its post-processing.

numpy / OpenCV / pyclipper only besides ONNX Runtime, so the Triton page model can run this very file.

- input: the page resized keeping its aspect, as the rapidocr wheel feeds this detector by default: the shorter side
  brought up to at least ``limit_side`` (736) px (``limit_type`` min; ``max``: the longer side down to at most
  ``limit_side``); then, a cap of this project's that bounds time and memory, the longer side never over ``max_side``
  (2000) px; each side rounded to a multiple of 32, BGR channel order, ``(x / 255 - 0.5) / 0.5`` (PP-OCR's detector
  convention);
- output: a text probability map [1, 1, H, W] at the input resolution;
- post-processing (Differentiable Binarization): threshold the map, find the outer contours of the text
  regions, score each region by the mean probability inside its minimum-area rectangle, grow the rectangle
  back to the full text extent (the network predicts shrunk regions: offset by area × ratio / perimeter),
  take the minimum-area rectangle of the grown polygon and scale it to the original image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pyclipper

#: The detector file inside the installed rapidocr wheel.
DETECTOR_FILE = "PP-OCRv6_det_small.onnx"
_SUBPIXEL = 16


@dataclass(frozen=True)
class DetectorSettings:
    """Pre- and post-processing settings of the DB detector (defaults: those the rapidocr wheel uses with it)."""

    limit_side: int = 736  # px: the detector input's shorter side at least this (limit_type min), or longer side at most
    limit_type: str = "min"  # min | max
    max_side: int = 2000  # the detector input's longer side never over this, px
    thresh: float = 0.3  # probability above which a pixel is text
    box_thresh: float = 0.5  # minimum mean probability inside a region's rectangle
    unclip_ratio: float = 1.6  # how far a shrunk region is grown back (offset = area * ratio / perimeter)
    min_size: float = 3.0  # shorter side below which a rectangle (detector px) is dropped
    max_candidates: int = 1000  # contours looked at per page

    def __post_init__(self) -> None:
        if self.limit_side < 32 or self.max_side < 32:
            raise ValueError(f"limit_side and max_side must be at least 32, got {self.limit_side}, {self.max_side}")
        if self.limit_type not in ("min", "max"):
            raise ValueError(f"limit_type must be 'min' or 'max', got {self.limit_type!r}")
        if not (0.0 < self.thresh < 1.0 and 0.0 <= self.box_thresh < 1.0):
            raise ValueError(f"thresh and box_thresh must lie in (0, 1): {self.thresh}, {self.box_thresh}")
        if self.unclip_ratio <= 0:
            raise ValueError(f"unclip_ratio must be positive, got {self.unclip_ratio}")

    def to_parameters(self) -> dict[str, str]:
        """The settings as string parameters (Triton config ``parameters``)."""
        return {k: str(getattr(self, k)) for k in _PARAMETERS}

    @classmethod
    def from_parameters(cls, params: dict[str, str]) -> "DetectorSettings":
        """The inverse of ``to_parameters``; defaults where absent."""
        return cls(**{k: cast(params[k]) for k, cast in _PARAMETERS.items() if k in params})


_PARAMETERS = {"limit_side": int, "limit_type": str, "max_side": int, "thresh": float, "box_thresh": float,
               "unclip_ratio": float}


def detector_path() -> Path:
    """The PP-OCR detector ONNX file of the installed rapidocr wheel."""
    from lowres_ocr.network.encoders import rapidocr_model_path

    return rapidocr_model_path(DETECTOR_FILE)


def input_size(width: int, height: int, settings: DetectorSettings = DetectorSettings()) -> tuple[int, int]:
    """(width, height) of the detector input: aspect kept, scaled by ``settings`` (module docstring), both sides
    multiples of 32 (≥ 32)."""
    if settings.limit_type == "min":
        scale = max(1.0, settings.limit_side / min(width, height))
    else:
        scale = min(1.0, settings.limit_side / max(width, height))
    scale = min(scale, settings.max_side / max(width, height))
    return (max(32, int(round(width * scale / 32)) * 32),
            max(32, int(round(height * scale / 32)) * 32))


def prepare(rgb: np.ndarray, settings: DetectorSettings = DetectorSettings()) -> np.ndarray:
    """RGB uint8 [H, W, 3] page → the detector input float32 [1, 3, h, w]."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image [H, W, 3], got shape {rgb.shape}")
    w, h = input_size(rgb.shape[1], rgb.shape[0], settings)
    resized = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)[:, :, ::-1]  # RGB → BGR
    x = (resized.astype(np.float32) / 255.0 - 0.5) / 0.5
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def order_quad(points: np.ndarray) -> np.ndarray:
    """Four corners → float32 [4, 2] clockwise from the top-left: top-left, top-right, bottom-right, bottom-left."""
    pts = np.asarray(points, dtype=np.float32).reshape(4, 2)
    by_x = pts[np.argsort(pts[:, 0], kind="stable")]
    left, right = by_x[:2], by_x[2:]
    tl, bl = left[np.argsort(left[:, 1], kind="stable")]
    tr, br = right[np.argsort(right[:, 1], kind="stable")]
    return np.stack([tl, tr, br, bl]).astype(np.float32)


def _min_rect(points: np.ndarray) -> tuple[np.ndarray, float]:
    """The minimum-area rectangle of ``points`` as an ordered quad, and its shorter side."""
    rect = cv2.minAreaRect(np.asarray(points, dtype=np.float32).reshape(-1, 2))
    return order_quad(cv2.boxPoints(rect)), float(min(rect[1]))


def _mean_inside(prob: np.ndarray, quad: np.ndarray) -> float:
    """Mean of ``prob`` over the pixels inside ``quad`` (computed on the quad's bounding window only)."""
    h, w = prob.shape
    x0, y0 = np.clip(np.floor(quad.min(0)).astype(int), 0, [w - 1, h - 1])
    x1, y1 = np.clip(np.ceil(quad.max(0)).astype(int), 0, [w - 1, h - 1])
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(quad - [x0, y0]).astype(np.int32)], 1)
    return float(cv2.mean(prob[y0:y1 + 1, x0:x1 + 1], mask)[0])


def unclip(quad: np.ndarray, ratio: float) -> np.ndarray | None:
    """Grow ``quad`` outwards by area × ratio / perimeter (rounded joins); None when it vanishes."""
    area = abs(cv2.contourArea(quad))
    perimeter = cv2.arcLength(quad, True)
    if perimeter <= 0 or area <= 0:
        return None
    offset = pyclipper.PyclipperOffset()  # integer coordinates: work at 1/16 px
    offset.AddPath(np.round(quad * _SUBPIXEL).astype(np.int64).tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    grown = offset.Execute(area * ratio / perimeter * _SUBPIXEL)
    if len(grown) != 1:
        return None
    return np.asarray(grown[0], dtype=np.float32) / _SUBPIXEL


def db_boxes(prob: np.ndarray, image_size: tuple[int, int],
             settings: DetectorSettings = DetectorSettings()) -> tuple[np.ndarray, np.ndarray]:
    """Probability map [h, w] (or [1, 1, h, w]) → quads float32 [N, 4, 2] in ``image_size`` (width, height) px, scores [N]."""
    prob = np.asarray(prob, dtype=np.float32).reshape(np.shape(prob)[-2:])
    mask = cv2.dilate((prob > settings.thresh).astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    scale = np.array([image_size[0] / prob.shape[1], image_size[1] / prob.shape[0]], dtype=np.float32)
    quads, scores = [], []
    for contour in contours[:settings.max_candidates]:
        quad, short = _min_rect(contour)
        if short < settings.min_size:
            continue
        score = _mean_inside(prob, quad)
        if score < settings.box_thresh:
            continue
        grown = unclip(quad, settings.unclip_ratio)
        if grown is None:
            continue
        quad, short = _min_rect(grown)
        if short < settings.min_size + 2:
            continue
        quad = np.clip(quad * scale, 0, [image_size[0], image_size[1]])
        if min(np.linalg.norm(quad[1] - quad[0]), np.linalg.norm(quad[3] - quad[0])) <= 3:
            continue  # collapsed by clipping to the image
        quads.append(quad)
        scores.append(score)
    if not quads:
        return np.zeros((0, 4, 2), dtype=np.float32), np.zeros((0,), dtype=np.float32)
    return np.stack(quads).astype(np.float32), np.asarray(scores, dtype=np.float32)


class Detector:
    """The DB detector under ONNX Runtime: ``detect(rgb)`` → (quads [N, 4, 2], scores [N]) in image px."""

    def __init__(self, path: str | Path | None = None, settings: DetectorSettings = DetectorSettings(),
                 threads: int = 0):
        import onnxruntime as ort

        self.path = Path(path) if path else detector_path()
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: detector ONNX file not found")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.settings = settings

    def probability(self, rgb: np.ndarray) -> np.ndarray:
        """The text probability map [h, w] of the detector input made from ``rgb``."""
        out = self.session.run(None, {self.input_name: prepare(rgb, self.settings)})[0]
        return out[0, 0]

    def detect(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return db_boxes(self.probability(rgb), (rgb.shape[1], rgb.shape[0]), self.settings)
