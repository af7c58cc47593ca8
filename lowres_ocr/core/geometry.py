"""The network input geometry: the one place that turns a crop into the network's input tensor.

Every stage calls it: the training batcher, the evaluator (through ``Recognizer``), ONNX export and parity,
the TensorRT profile, the Triton ``preprocess`` model (which vendors this numpy/PIL-only file) and the
pipeline steps. The geometry is a model setting (stored in checkpoints and in the ONNX metadata):

- ``squeeze``: the whole crop resized (bicubic) to ``width × height``, whatever its aspect ratio;
- ``aspect``: the crop resized (bicubic) to ``height`` keeping its aspect ratio, then right-padded with
  mid-grey (0.5, which is 0 after PP-OCR's normalisation) to ``width``; a crop wider than ``width`` at that
  height is squeezed to ``width`` (its characters get narrower, nothing is cut off).

The SR output and the HR side (SR target, HR reading) use the same geometry at ``sr_scale`` times the size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

KINDS = ("squeeze", "aspect")
#: Value of the padding right of an aspect-kept crop, in [0, 1].
PAD_VALUE = 0.5


@dataclass(frozen=True)
class Geometry:
    kind: str = "squeeze"
    height: int = 16
    width: int = 64  # squeeze: the width; aspect: the padded (maximum) width
    sr_scale: int = 2

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"geometry kind must be one of {KINDS}, got {self.kind!r}")
        if self.height < 4 or self.width < 4 or self.sr_scale < 1:
            raise ValueError(f"geometry too small: {self}")

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None) -> "Geometry":
        """From a model config's ``geometry`` block; none (stored models before the setting) is squeeze 16×64."""
        return cls(**(cfg or {}))

    def to_config(self) -> dict[str, Any]:
        return asdict(self)

    def scaled(self) -> "Geometry":
        """The same geometry at the SR / HR resolution."""
        return Geometry(self.kind, self.height * self.sr_scale, self.width * self.sr_scale, 1)

    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one network input."""
        return 3, self.height, self.width

    def sr_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one SR output / HR input."""
        return self.scaled().input_shape()

    def content_width(self, size: tuple[int, int]) -> int:
        """Width the crop of ``size`` (width, height) takes in the input, before any padding."""
        if self.kind == "squeeze":
            return self.width
        w, h = size
        return max(1, min(self.width, round(w * self.height / max(1, h))))

    def to_array(self, img: Image.Image) -> np.ndarray:
        """One crop → float32 [3, height, width] in [0, 1]."""
        content = resize(img.convert("RGB"), (self.content_width(img.size), self.height))
        arr = np.asarray(content, dtype=np.float32) / 255.0
        if arr.shape[1] < self.width:
            pad = np.full((self.height, self.width - arr.shape[1], 3), PAD_VALUE, dtype=np.float32)
            arr = np.concatenate([arr, pad], axis=1)
        return np.ascontiguousarray(arr.transpose(2, 0, 1))

    def batch(self, images: list[Image.Image]) -> np.ndarray:
        """Crops → float32 [B, 3, height, width]."""
        if not images:
            return np.zeros((0, *self.input_shape()), dtype=np.float32)
        return np.stack([self.to_array(im) for im in images])


#: The geometry of models that do not say otherwise.
SQUEEZE = Geometry()
#: (width, height) of the squeeze geometry's network input and of its SR output / HR crops.
LR_SIZE = (SQUEEZE.width, SQUEEZE.height)
HR_SIZE = (SQUEEZE.scaled().width, SQUEEZE.scaled().height)


def resize(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Bicubic resize to ``size`` (width, height), the TextZoom convention."""
    return img if img.size == size else img.resize(size, Image.BICUBIC)


def lr_input(img: Image.Image, geometry: Geometry = SQUEEZE) -> np.ndarray:
    """One crop → the network input float32 [3, H, W] in [0, 1]."""
    return geometry.to_array(img)


def hr_input(img: Image.Image, geometry: Geometry = SQUEEZE) -> np.ndarray:
    """One HR crop → the recognizer's HR input / the SR target, float32 [3, H, W] in [0, 1]."""
    return geometry.scaled().to_array(img)


def lr_batch(images: list[Image.Image], geometry: Geometry = SQUEEZE) -> np.ndarray:
    """Crops → the network input batch float32 [B, 3, H, W]."""
    return geometry.batch(images)


def hr_batch(images: list[Image.Image], geometry: Geometry = SQUEEZE) -> np.ndarray:
    """HR crops → the recognizer's HR input batch float32 [B, 3, H, W]."""
    return geometry.scaled().batch(images)
