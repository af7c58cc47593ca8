"""End-to-end evaluation on whole images: ICDAR-2015-style quadrilateral ground truth, detection and transcription.

Protocol (the competition's generic end-to-end task, no lexicon):

- a detection matches a ground-truth box when their polygons' IoU exceeds ``IOU_THRESHOLD`` (0.5); matching is
  one to one, pairs taken in order of decreasing IoU;
- ground truth ``###`` and words shorter than ``MIN_WORD_LENGTH`` (3) characters are *don't care*: a detection
  matched to one is neither right nor wrong (left out of precision), and they are left out of recall;
- end to end, a matched detection is correct when its transcription equals the ground truth ignoring case;
  detection-only, the match alone counts;
- precision = correct / counted detections, recall = correct / counted ground truth, F = their harmonic mean,
  pooled over all images.

Ground-truth files: ``gt/gt_<image stem>.txt``, one box a line: ``x1,y1,...,x4,y4,transcription`` (the
transcription is everything after the 8th comma; a UTF-8 BOM is allowed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

IOU_THRESHOLD = 0.5
MIN_WORD_LENGTH = 3
DONT_CARE = "###"


@dataclass(frozen=True)
class Box:
    points: np.ndarray  # float [4, 2], image px
    text: str


class GroundTruthError(ValueError):
    """A ground-truth file that cannot be read: names the file and line."""


def read_ground_truth(path: Path) -> list[Box]:
    """Boxes of one ``gt_*.txt`` file."""
    boxes = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        cells = line.split(",", 8)
        try:
            coords = np.array([float(c) for c in cells[:8]], dtype=np.float64).reshape(4, 2)
        except ValueError:
            raise GroundTruthError(f"{path}:{number}: expected 8 coordinates then the transcription, got {line!r}") from None
        if len(cells) < 9:
            raise GroundTruthError(f"{path}:{number}: no transcription after the 8 coordinates")
        boxes.append(Box(coords, cells[8]))
    return boxes


def is_dont_care(text: str) -> bool:
    return text == DONT_CARE or len(text) < MIN_WORD_LENGTH


def _polygon(points: np.ndarray):  # noqa: ANN202 - shapely geometry
    from shapely.geometry import Polygon

    poly = Polygon([(float(x), float(y)) for x, y in points])
    return poly if poly.is_valid else poly.buffer(0)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two quadrilaterals (self-intersecting ones are repaired first)."""
    pa, pb = _polygon(a), _polygon(b)
    union = pa.union(pb).area
    return float(pa.intersection(pb).area / union) if union > 0 else 0.0


def match(ground_truth: list[Box], detections: list[Box], threshold: float = IOU_THRESHOLD) -> list[tuple[int, int]]:
    """One-to-one (gt index, detection index) pairs with IoU > ``threshold``, best pairs first."""
    pairs = sorted(((iou(g.points, d.points), gi, di) for gi, g in enumerate(ground_truth)
                    for di, d in enumerate(detections)), reverse=True)
    used_g: set[int] = set()
    used_d: set[int] = set()
    out = []
    for score, gi, di in pairs:
        if score <= threshold:
            break
        if gi not in used_g and di not in used_d:
            used_g.add(gi)
            used_d.add(di)
            out.append((gi, di))
    return out


@dataclass
class Tally:
    """Counts pooled over images: detection-only and end-to-end."""

    gt: int = 0  # counted ground truth (not don't care)
    det: int = 0  # counted detections (not matched to a don't-care box)
    matched: int = 0  # detection-only hits
    correct: int = 0  # end-to-end hits
    images: int = 0
    per_image: list[dict[str, object]] = field(default_factory=list)

    def add(self, name: str, ground_truth: list[Box], detections: list[Box]) -> None:
        pairs = match(ground_truth, detections)
        ignored = {di for gi, di in pairs if is_dont_care(ground_truth[gi].text)}
        hits = [(gi, di) for gi, di in pairs if di not in ignored]
        correct = sum(ground_truth[gi].text.lower() == detections[di].text.lower() for gi, di in hits)
        gt = sum(not is_dont_care(g.text) for g in ground_truth)
        det = len(detections) - len(ignored)
        self.gt, self.det, self.matched, self.correct = self.gt + gt, self.det + det, self.matched + len(hits), self.correct + correct
        self.images += 1
        self.per_image.append({"image": name, "gt": gt, "detections": det, "matched": len(hits), "correct": correct})

    @staticmethod
    def _prf(hits: int, det: int, gt: int) -> dict[str, float]:
        p = 100.0 * hits / det if det else 0.0
        r = 100.0 * hits / gt if gt else 0.0
        return {"precision": p, "recall": r, "f": 2 * p * r / (p + r) if p + r else 0.0}

    def summary(self) -> dict[str, object]:
        return {"images": self.images, "gt": self.gt, "detections": self.det,
                "end_to_end": self._prf(self.correct, self.det, self.gt),
                "detection": self._prf(self.matched, self.det, self.gt)}


def image_pairs(folder: Path, limit: int = 0) -> list[tuple[Path, Path]]:
    """(image, ground truth) of an end-to-end set: ``images/*`` with ``gt/gt_<stem>.txt``; errors name what is missing."""
    images = sorted(p for p in (folder / "images").glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not images:
        raise GroundTruthError(f"{folder}: no images/ with .jpg/.png files (an end-to-end set has images/ and gt/)")
    pairs = []
    for image in images[:limit] if limit else images:
        gt = folder / "gt" / f"gt_{image.stem}.txt"
        if not gt.is_file():
            raise GroundTruthError(f"{image}: its ground truth {gt} is missing")
        pairs.append((image, gt))
    return pairs
