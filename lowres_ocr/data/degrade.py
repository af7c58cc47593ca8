"""HR → LR degradation: the seed's recipe (blur + down/up sampling) plus express-sheet artefacts.

``degrade(hr, rng, strength)`` returns an RGB LR image of the network input size (``lowres_ocr.core.geometry.LR_SIZE``)
or of the ``size`` asked for (the wide Chinese lines keep their aspect); the same generator state gives the same image.
- ``seed``: in random order, each with probability 0.8, a Gaussian blur with an odd kernel of 3–11 px
  (sigma derived from the kernel, as OpenCV does for sigma=0) and a down/up sampling that shrinks width
  and height independently by a random factor in [1, 4] and resizes back.
- ``express``: the seed recipe, preceded by tilt / perspective and followed by darkness or low contrast,
  JPEG artefacts and sensor noise, as seen on photographed parcel labels. The tilt is at most 6 degrees up to
  the 4:1 aspect of the word crops and shrinks in proportion on wider lines, so their ends stay in the crop.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from lowres_ocr.core.geometry import LR_SIZE


def _blur(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    k = 3 + 2 * int(rng.integers(5))  # odd kernel 3..11; sigma=0 lets OpenCV derive it from the kernel
    return cv2.GaussianBlur(a, (k, k), 0)


def _down_up(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = a.shape[:2]
    fx, fy = rng.uniform(1.0, 4.0, size=2)
    small = cv2.resize(a, (max(1, round(w / fx)), max(1, round(h / fy))), interpolation=cv2.INTER_AREA)
    interp = [cv2.INTER_NEAREST, cv2.INTER_LINEAR, cv2.INTER_CUBIC][int(rng.integers(3))]
    return cv2.resize(small, (w, h), interpolation=interp)


def _geometry(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = a.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    jitter = rng.uniform(-0.12, 0.12, size=(4, 2)) * np.float32([w * 0.25, h])
    max_deg = 6.0 * min(1.0, 4.0 * h / w)  # 6 degrees on 128x32 and narrower; less on wide lines
    angle = np.deg2rad(rng.uniform(-max_deg, max_deg))
    c, s = np.cos(angle), np.sin(angle)
    centred = src - [w / 2, h / 2]
    rotated = centred @ np.float32([[c, s], [-s, c]]) + [w / 2, h / 2]
    dst = np.float32(rotated + jitter)
    m = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(a, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def _photometric(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    f = a.astype(np.float32)
    kind = rng.random()
    if kind < 0.4:  # dark
        f *= rng.uniform(0.25, 0.7)
    elif kind < 0.8:  # low contrast
        mean = f.mean()
        f -= mean
        f *= rng.uniform(0.3, 0.7)
        f += mean
    noise = rng.standard_normal(size=f.shape, dtype=np.float32)
    noise *= rng.uniform(2.0, 10.0)
    f += noise
    np.clip(f, 0, 255, out=f)
    return f.astype(np.uint8)


def _jpeg(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # OpenCV encodes BGR: flip RGB so the chroma subsampling hits the right channels
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(a[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(15, 70))])
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]) if ok else a


STRENGTHS = ("seed", "express")


def degrade(hr: Image.Image, rng: np.random.Generator, strength: str = "seed",
            size: tuple[int, int] = LR_SIZE) -> Image.Image:
    """An LR version of ``hr`` (any size, RGB) of ``size`` (width, height; default 64×16); ``strength`` is
    ``seed`` or ``express``."""
    a = np.asarray(hr if hr.mode == "RGB" else hr.convert("RGB"))
    return Image.fromarray(degrade_array(a, rng, strength, size))


def degrade_array(a: np.ndarray, rng: np.random.Generator, strength: str = "seed",
                  size: tuple[int, int] = LR_SIZE) -> np.ndarray:
    """``degrade`` on an RGB uint8 array [H, W, 3]; returns uint8 [size[1], size[0], 3]."""
    if strength not in STRENGTHS:
        raise ValueError(f"strength must be 'seed' or 'express', got {strength!r}")
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 array [H, W, 3], got {a.dtype} {a.shape}")
    if strength == "express" and rng.random() < 0.7:
        a = _geometry(a, rng)
    ops = [_blur, _down_up]
    for i in rng.permutation(len(ops)):
        if rng.random() < 0.8:
            a = ops[i](a, rng)
    a = cv2.resize(a, size, interpolation=cv2.INTER_CUBIC)
    if strength == "express":
        if rng.random() < 0.7:
            a = _photometric(a, rng)
        if rng.random() < 0.5:
            a = _jpeg(a, rng)
    return a
