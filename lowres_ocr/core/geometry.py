"""The network input geometry: the one place that turns a crop into the network's input tensor.

numpy/PIL only, so the Triton ``preprocess`` model vendors this file; training, evaluation, ONNX parity and
the pipeline steps call it too.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

LR_SIZE = (64, 16)  # (width, height) of the network input


HR_SIZE = (128, 32)  # (width, height) of the SR output / HR crops


def resize(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Bicubic resize to ``size`` (width, height), the TextZoom convention."""
    return img if img.size == size else img.resize(size, Image.BICUBIC)


def to_array(img: Image.Image, size: tuple[int, int] = LR_SIZE) -> np.ndarray:
    """RGB image → float32 [3, H, W] in [0, 1] at ``size``."""
    arr = np.asarray(resize(img.convert("RGB"), size), dtype=np.float32) / 255.0
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def batch_arrays(images: list[Image.Image], size: tuple[int, int] = LR_SIZE) -> np.ndarray:
    """Several images → float32 [B, 3, H, W] in [0, 1]."""
    if not images:
        return np.zeros((0, 3, size[1], size[0]), dtype=np.float32)
    return np.stack([to_array(im, size) for im in images])
