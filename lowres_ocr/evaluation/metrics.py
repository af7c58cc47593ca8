"""Recognition and image-quality metrics of the evaluation protocol (numpy only).

Text protocols (see docs/report-schema.md). A set is scored under ``line`` when any of its labels holds a CJK
character, else under ``latin36``:

- ``latin36``: ``accuracy`` (the headline) is the exact match after ``lowres_ocr.core.charset.normalize_36`` on
  both sides (accents folded, lower-cased, only ``[0-9a-z]`` kept); ``accuracy_cs`` the exact match after
  ``fold_to_ascii`` (case and punctuation kept, accents folded, spaces dropped); ``one_minus_ned`` is
  1 - edit_distance(gt, pred) / max(len(gt), len(pred)) on the 36-char strings (1.0 when both are empty).
  A label is filtered (not scored) when it is empty after the normalisation, longer than ``MAX_LABEL_LENGTH``
  after it, or keeps characters outside ``CHARSET`` after ``fold_to_ascii``.
- ``line`` (Chinese and mixed lines): ``accuracy`` is the line accuracy, the exact match after
  ``normalize_line`` on both sides (NFKC: full-width forms folded to their half-width ones; all spaces removed);
  ``accuracy_cs`` is the same; ``one_minus_ned`` is the character-level 1-NED on those strings. A label is
  filtered when it is empty after ``normalize_line`` or longer than ``LINE_MAX_LENGTH`` characters.

Image quality, between two float [3, H, W] images in [0, 1] (both at 32×128 in the runner):

- PSNR in dB with data range 1 over all RGB values; identical images give ``PSNR_CAP`` (100 dB);
- SSIM (Wang et al. 2004): Gaussian window 11×11, sigma 1.5, normalised to sum 1; C1 = (0.01·L)²,
  C2 = (0.03·L)², L = 1; per channel on the *valid* region (windows fully inside the image, no padding),
  then the mean over all window positions and the three channels.
Per-set values are the mean of the per-image values.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from lowres_ocr.core.charset import CHARSET, MAX_LABEL_LENGTH, fold_to_ascii, normalize_36, outside_charset

PROTOCOLS = ("latin36", "line")
LINE_MAX_LENGTH = 64
PSNR_CAP = 100.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


# ------------------------------------------------------------------------------------------------ text
def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute all cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        cur = [i]
        for j, cb in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def one_minus_ned(gt: str, pred: str) -> float:
    """1 - normalised edit distance (normalised by the longer string); 1.0 for two empty strings."""
    longest = max(len(gt), len(pred))
    return 1.0 if longest == 0 else 1.0 - edit_distance(gt, pred) / longest


def is_cjk(ch: str) -> bool:
    """A CJK ideograph, kana, hangul or CJK punctuation / full-width form."""
    name = unicodedata.name(ch, "")
    return name.startswith(("CJK ", "HIRAGANA", "KATAKANA", "HANGUL", "FULLWIDTH", "IDEOGRAPHIC"))


def protocol_for(labels: Iterable[str]) -> str:
    """``line`` for a set with any CJK label, else ``latin36``."""
    return "line" if any(is_cjk(ch) for label in labels for ch in label) else "latin36"


def normalize_line(text: str) -> str:
    """The ``line`` protocol's form: NFKC (full-width → half-width), every space removed."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def label_filter(label: str, max_length: int = MAX_LABEL_LENGTH, protocol: str = "latin36") -> tuple[str, str] | None:
    """``(reason, detail)`` when ``label`` is not scored under the protocol, else None.

    Reasons: ``empty_label`` (nothing left after the protocol's normalisation), ``too_long`` (more than
    ``max_length`` characters after it; ``LINE_MAX_LENGTH`` under ``line``), ``outside_charset`` (``latin36``:
    characters that fold_to_ascii cannot bring into CHARSET).
    """
    if protocol == "line":
        line = normalize_line(label)
        if not line:
            return "empty_label", f"label {label!r} is empty after the line normalisation"
        if len(line) > LINE_MAX_LENGTH:
            return "too_long", f"label {label!r} has {len(line)} characters (> {LINE_MAX_LENGTH})"
        return None
    norm = normalize_36(label)
    if not norm:
        return "empty_label", f"label {label!r} is empty after the 36-char normalisation"
    if len(norm) > max_length:
        return "too_long", f"label {label!r} has {len(norm)} characters after normalisation (> {max_length})"
    bad = outside_charset(fold_to_ascii(label), CHARSET)
    if bad:
        return "outside_charset", f"label {label!r} has {', '.join(repr(c) for c in bad)} outside the charset"
    return None


@dataclass(frozen=True)
class Score:
    """One prediction scored against its label."""

    correct: bool  # 36-char protocol
    correct_cs: bool
    one_minus_ned: float
    length: int  # of the normalised label


def score(label: str, prediction: str, protocol: str = "latin36") -> Score:
    if protocol == "line":
        gt, pred = normalize_line(label), normalize_line(prediction)
        return Score(gt == pred, gt == pred, one_minus_ned(gt, pred), len(gt))
    gt, pred = normalize_36(label), normalize_36(prediction)
    return Score(gt == pred, fold_to_ascii(label) == fold_to_ascii(prediction), one_minus_ned(gt, pred), len(gt))


@dataclass(frozen=True)
class Tally:
    """Sums over scored samples; ``n`` is the number of samples used."""

    n: int = 0
    correct: int = 0
    correct_cs: int = 0
    ned_sum: float = 0.0

    def add(self, s: Score) -> "Tally":
        return Tally(self.n + 1, self.correct + s.correct, self.correct_cs + s.correct_cs, self.ned_sum + s.one_minus_ned)

    def __add__(self, other: "Tally") -> "Tally":
        return Tally(self.n + other.n, self.correct + other.correct, self.correct_cs + other.correct_cs,
                     self.ned_sum + other.ned_sum)

    def summary(self) -> dict[str, float | int]:
        """Percentages (0-100) and the count; 0.0 for an empty tally."""
        d = self.n or 1
        return {"n": self.n, "accuracy": 100.0 * self.correct / d, "accuracy_cs": 100.0 * self.correct_cs / d,
                "one_minus_ned": 100.0 * self.ned_sum / d}


def tally(scores: list[Score]) -> Tally:
    t = Tally()
    for s in scores:
        t = t.add(s)
    return t


def weighted_average(tallies: list[Tally]) -> dict[str, float | int]:
    """Average over sets weighted by their sample counts (= pooling all samples)."""
    total = Tally()
    for t in tallies:
        total = total + t
    return total.summary()


# ----------------------------------------------------------------------------------------------- image
def _check_pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 3:
        raise ValueError(f"images must both be [C, H, W] of one shape, got {x.shape} and {y.shape}")
    return x, y


def psnr(x: np.ndarray, y: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over all values; ``PSNR_CAP`` for identical images."""
    x, y = _check_pair(x, y)
    mse = float(np.mean((x - y) ** 2))
    if mse == 0.0:
        return PSNR_CAP
    return min(PSNR_CAP, 10.0 * math.log10(data_range**2 / mse))


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """2-D Gaussian window [size, size] summing to 1."""
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(r**2) / (2.0 * sigma**2))
    g /= g.sum()
    return np.outer(g, g)


def _filter_valid(img: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Correlate a [H, W] image with ``window`` over the valid region only."""
    k = window.shape[0]
    views = np.lib.stride_tricks.sliding_window_view(img, (k, k))
    return np.einsum("ijkl,kl->ij", views, window)


def ssim(x: np.ndarray, y: np.ndarray, data_range: float = 1.0) -> float:
    """Mean SSIM of two [C, H, W] images (conventions in the module docstring)."""
    x, y = _check_pair(x, y)
    window = gaussian_window()
    if min(x.shape[1:]) < window.shape[0]:
        raise ValueError(f"SSIM needs images of at least {window.shape[0]}x{window.shape[0]} px, got {x.shape[1:]}")
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    values = []
    for xc, yc in zip(x, y):
        mx, my = _filter_valid(xc, window), _filter_valid(yc, window)
        sxx = _filter_valid(xc * xc, window) - mx * mx
        syy = _filter_valid(yc * yc, window) - my * my
        sxy = _filter_valid(xc * yc, window) - mx * my
        m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        values.append(m.mean())
    return float(np.mean(values))
