"""Image quality of a pairs set: PSNR/SSIM of SR and of bicubic(LR) against HR, at the SR resolution of the
model's input geometry (32×128 for the squeeze 16×64 one; the HR crop goes through the same geometry).

The bicubic image is the one the ``bicubic`` accuracy mode hands the recognizer
(``lowres_ocr.network.inference.Recognizer``): the LR crop through ``geometry.lr_batch``, then
``lowres_ocr.network.sr.bicubic_upsample`` (torch bicubic ×2, clamped to [0, 1]) on the float tensor. The
same array is measured here and shown as the gallery's "LR (bicubic)" thumbnail. It is computed on the CPU;
a checkpoint evaluated on a GPU runs the same interpolation there (float rounding apart, the same image).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from lowres_ocr.core.geometry import SQUEEZE, Geometry, hr_batch, lr_batch
from lowres_ocr.evaluation.metrics import psnr, ssim
from lowres_ocr.evaluation.predictors import Predictor


def bicubic_images(lrs: list[Image.Image], batch_size: int = 64, geometry: Geometry = SQUEEZE) -> np.ndarray:
    """float32 [N, 3, 2H, 2W] in [0, 1]: each LR crop as the bicubic accuracy mode's recognizer input."""
    import torch

    from lowres_ocr.network.sr import bicubic_upsample

    out: list[np.ndarray] = []
    with torch.inference_mode():
        for i in range(0, len(lrs), max(1, batch_size)):
            lr = torch.from_numpy(lr_batch(lrs[i:i + batch_size], geometry))
            out.append(bicubic_upsample(lr, geometry.sr_scale).float().numpy())
    return np.concatenate(out) if out else np.zeros((0, *geometry.sr_shape()), dtype=np.float32)


def _mean_quality(images: np.ndarray, hr: list[np.ndarray]) -> dict[str, float]:
    return {"psnr": float(np.mean([psnr(x, h) for x, h in zip(images, hr)])),
            "ssim": float(np.mean([ssim(x, h) for x, h in zip(images, hr)]))}


def image_quality(p: Predictor, lrs: list[Image.Image], hrs: list[Image.Image], batch_size: int,
                  ) -> tuple[dict[str, Any], np.ndarray | None, np.ndarray]:
    """(quality entry of report.json, SR images or None, bicubic images) for LR/HR pairs.

    The entry holds ``bicubic`` always and ``sr`` when the predictor returns SR images.
    """
    if len(lrs) != len(hrs):
        raise ValueError(f"{len(lrs)} LR images for {len(hrs)} HR images")
    geometry: Geometry = getattr(p, "geometry", SQUEEZE)
    hr = list(hr_batch(hrs, geometry))
    bicubic = bicubic_images(lrs, batch_size, geometry)
    sr = p.super_resolve(lrs, batch_size)
    _, height, width = geometry.sr_shape()
    out: dict[str, Any] = {"size": f"{height}x{width}", "bicubic": _mean_quality(bicubic, hr)}
    if sr is not None:
        out["sr"] = _mean_quality(sr, hr)
    return out, sr, bicubic


def to_uint8(chw: np.ndarray) -> Image.Image:
    """float [3, H, W] in [0, 1] → PIL RGB image (gallery thumbnails)."""
    from lowres_ocr.core.images import to_uint8_image

    return to_uint8_image(chw)
