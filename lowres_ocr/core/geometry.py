"""The network input geometry: the one place that turns a crop into the network's input tensor.

Every stage calls it: the training batcher, the evaluator (through ``Recognizer``), ONNX export and parity,
the TensorRT profile, the Triton ``preprocess`` model (which vendors this numpy/PIL-only file) and the
pipeline steps. The geometry is a bicubic resize of the whole crop to ``LR_SIZE`` (the network input) and,
for the HR side (SR target and HR reading), to ``HR_SIZE``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: (width, height) of the network input.
LR_SIZE = (64, 16)
#: (width, height) of the SR output and of HR crops read by the recognizer.
HR_SIZE = (128, 32)


def input_shape() -> tuple[int, int, int]:
    """(channels, height, width) of one network input."""
    return 3, LR_SIZE[1], LR_SIZE[0]


def sr_shape() -> tuple[int, int, int]:
    """(channels, height, width) of one SR output / HR input."""
    return 3, HR_SIZE[1], HR_SIZE[0]


def resize(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Bicubic resize to ``size`` (width, height), the TextZoom convention."""
    return img if img.size == size else img.resize(size, Image.BICUBIC)


def to_array(img: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """RGB image → float32 [3, H, W] in [0, 1] at ``size``."""
    arr = np.asarray(resize(img.convert("RGB"), size), dtype=np.float32) / 255.0
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def batch_arrays(images: list[Image.Image], size: tuple[int, int]) -> np.ndarray:
    """Several images → float32 [B, 3, H, W] in [0, 1]."""
    if not images:
        return np.zeros((0, 3, size[1], size[0]), dtype=np.float32)
    return np.stack([to_array(im, size) for im in images])


def lr_input(img: Image.Image) -> np.ndarray:
    """One crop → the network input float32 [3, H, W] in [0, 1]."""
    return to_array(img, LR_SIZE)


def hr_input(img: Image.Image) -> np.ndarray:
    """One HR crop → the recognizer's HR input / the SR target, float32 [3, H, W] in [0, 1]."""
    return to_array(img, HR_SIZE)


def lr_batch(images: list[Image.Image]) -> np.ndarray:
    """Crops → the network input batch float32 [B, 3, H, W]."""
    return batch_arrays(images, LR_SIZE)


def hr_batch(images: list[Image.Image]) -> np.ndarray:
    """HR crops → the recognizer's HR input batch float32 [B, 3, H, W]."""
    return batch_arrays(images, HR_SIZE)
