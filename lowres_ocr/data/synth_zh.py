"""Chinese / mixed express-sheet pairs for ``lowres-ocr data synth --source zh|mixed``.

A line (``express_zh``) is rendered in one CJK face of its split (``cjk_fonts``) at a fixed HR height of
``ZH_HR_HEIGHT`` px and the width the text needs, glyphs keeping their proportions (no stretch to 128×32 as for
the ASCII words: a 20-character address would be unreadable at 4:1). The width is capped at
``ZH_MAX_ASPECT``:1; a longer line gets a smaller font instead of being cut. HR widths are multiples of
``WIDTH_STEP`` so that each LR scale in ``ZH_LR_SCALES`` divides them; the LR side is the express (or seed)
degradation at 1/2 or 1/3 of the HR size. The recognizer's input geometry (``lowres_ocr.core.geometry``)
resizes whatever it is given, so these crops need no fixed size.

The generator is seeded with ``(seed, index, source, split)`` per sample: the output is byte-identical for a
seed whatever the chunking or number of workers, and the train and test sets of one seed are different
streams.
"""

from __future__ import annotations

import math
from functools import cache

import cv2
import numpy as np

from lowres_ocr.data import cjk_fonts, express_zh
from lowres_ocr.data.degrade import degrade_array
from lowres_ocr.data.synth import FontRef, ink_mask, load_font, paint

#: HR height of a Chinese / mixed line, px
ZH_HR_HEIGHT = 48
#: widest HR line, as width:height
ZH_MAX_ASPECT = 12
ZH_MAX_WIDTH = ZH_HR_HEIGHT * ZH_MAX_ASPECT
#: HR size / LR size, one drawn per sample
ZH_LR_SCALES = (2, 3)
#: HR widths are multiples of this (the least common multiple of the LR scales)
WIDTH_STEP = 6
#: font sizes the glyphs are rasterised at before scaling (few sizes keep the glyph cache warm)
RASTER_SIZES = (36, 44)
#: stream ids of the per-sample generator
_SOURCE_ID = {"zh": 1, "mixed": 2}
_SPLIT_ID = {"train": 0, "test": 1}


def _bitmap(ref: FontRef, ch: str) -> tuple[tuple[int, int], bytes]:
    mask = load_font(ref, 20).getmask(ch)
    return mask.size, bytes(mask)


@cache
def _notdef(ref: FontRef) -> tuple[tuple[int, int], bytes]:
    return _bitmap(ref, "\uffff")  # a noncharacter: no face maps it


@cache
def covers(ref: FontRef, ch: str) -> bool:
    """Whether the face ``ref`` has a glyph for ``ch`` (a missing one renders as the .notdef box)."""
    return ch.isspace() or _bitmap(ref, ch) != _notdef(ref)


def face_for(text: str, faces: tuple[cjk_fonts.Face, ...], start: int) -> FontRef | None:
    """The first face from ``start`` on (cyclically) that has every character of ``text``; None if none does."""
    for k in range(len(faces)):
        face = faces[(start + k) % len(faces)]
        ref = (face.path, face.index)
        if all(covers(ref, ch) for ch in text):
            return ref
    return None


def _place(mask: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``mask`` (ink of a line rendered at ``size`` px) scaled into a ZH_HR_HEIGHT-high canvas, uint8 [H, W].

    The font size in HR px is drawn from 50-75 % of the height; a line too wide for ZH_MAX_WIDTH at that
    size is scaled down to fit (both axes: the glyphs keep their proportions)."""
    h, w = mask.shape
    em = rng.uniform(0.5, 0.75) * ZH_HR_HEIGHT
    pad_x = 2 + int(rng.random() * 10)
    s = min(em / size, (ZH_HR_HEIGHT - 4) / h, (ZH_MAX_WIDTH - 2 * pad_x) / w)
    new_w, new_h = max(1, round(w * s)), max(1, round(h * s))
    scaled = cv2.resize(mask, (new_w, new_h), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    width = min(ZH_MAX_WIDTH, max(ZH_HR_HEIGHT, math.ceil((new_w + 2 * pad_x) / WIDTH_STEP) * WIDTH_STEP))
    canvas = np.zeros((ZH_HR_HEIGHT, width), np.uint8)
    x0 = (width - new_w) // 2 + int(rng.integers(-(width - new_w) // 4, (width - new_w) // 4 + 1))
    y0 = (ZH_HR_HEIGHT - new_h) // 2 + int(rng.integers(-(ZH_HR_HEIGHT - new_h) // 4, (ZH_HR_HEIGHT - new_h) // 4 + 1))
    canvas[y0:y0 + new_h, x0:x0 + new_w] = scaled
    return canvas


def render_line(text: str, ref: FontRef, rng: np.random.Generator) -> np.ndarray:
    """``text`` in face ``ref``, random colours and background: RGB uint8 [ZH_HR_HEIGHT, W, 3]."""
    size = RASTER_SIZES[int(rng.random() * len(RASTER_SIZES))]
    spacing = rng.uniform(-0.02, 0.15) if rng.random() < 0.5 else 0.0
    return paint(_place(ink_mask(text, ref, size, spacing), size, rng), rng)


def make_pair_zh(seed: int, index: int, strength: str = "express", source: str = "zh",
                 split: str = "train") -> tuple[str, np.ndarray, np.ndarray]:
    """Sample ``index`` of the stream ``(seed, source, split)``: (label, HR [48, W, 3], LR [48/k, W/k, 3])."""
    if source not in _SOURCE_ID:
        raise ValueError(f"source must be one of {', '.join(_SOURCE_ID)}, got {source!r}")
    faces = cjk_fonts.require(split)
    gen = express_zh.generator(split)
    rng = np.random.default_rng([seed, index, _SOURCE_ID[source], _SPLIT_ID[split]])
    for _ in range(50):
        text = express_zh.line(gen, rng, source)
        ref = face_for(text, faces, int(rng.random() * len(faces)))
        if text and ref is not None:
            break
    else:
        raise RuntimeError(f"no installed {split} font renders 50 lines in a row ({cjk_fonts.missing(split)})")
    hr = render_line(text, ref, rng)
    k = ZH_LR_SCALES[int(rng.random() * len(ZH_LR_SCALES))]
    lr = degrade_array(hr, rng, strength, (hr.shape[1] // k, hr.shape[0] // k))
    return text, hr, lr
