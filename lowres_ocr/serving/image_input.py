"""One client image (encoded bytes) → the network input, with the serving size limits.

numpy/PIL only: the Triton ``preprocess`` model runs this very file (copied next to its model.py),
and the in-process baselines call it too, so both paths share one implementation.

Limits (documented in README, serving section):
- encoded size: 1 byte .. ``MAX_BYTES`` (8 MiB);
- width and height: each ``MIN_SIDE`` (4) .. ``MAX_SIDE`` (3072) px, and at most ``MAX_PIXELS``
  (4 194 304 = 2048²) pixels. Real word crops span 6×10 to 2836×704 px in the benchmark sets; a 1×1
  image carries no text and a 4000×4000 one is not a word crop, so both are refused.
The header is checked *before* the pixels are decoded, so a huge image costs no memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lowres_ocr.core.geometry import SQUEEZE, Geometry, lr_input
from lowres_ocr.core.images import BadImageError, decode_image, open_image

MAX_BYTES = 8 * 1024 * 1024
MIN_SIDE = 4
MAX_SIDE = 3072
MAX_PIXELS = 2048 * 2048


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = MAX_BYTES
    min_side: int = MIN_SIDE
    max_side: int = MAX_SIDE
    max_pixels: int = MAX_PIXELS

    @classmethod
    def from_parameters(cls, params: dict[str, str]) -> "ImageLimits":
        """Read the limits from Triton config ``parameters`` (string values), defaults where absent."""
        base = cls()
        return cls(**{f: int(params.get(f, getattr(base, f))) for f in ("max_bytes", "min_side", "max_side", "max_pixels")})


def check_header(data: bytes, limits: ImageLimits, name: str) -> tuple[int, int]:
    """Validate byte count and pixel size from the image header only; returns (width, height)."""
    if len(data) == 0:
        raise BadImageError(f"{name}: empty input (0 bytes)")
    if len(data) > limits.max_bytes:
        raise BadImageError(f"{name}: {len(data)} bytes exceeds the {limits.max_bytes}-byte limit")
    with open_image(data, name) as img:
        width, height = img.size
    if min(width, height) < limits.min_side:
        raise BadImageError(f"{name}: image of {width}x{height} px is smaller than the {limits.min_side} px minimum side")
    if max(width, height) > limits.max_side or width * height > limits.max_pixels:
        raise BadImageError(
            f"{name}: image of {width}x{height} px exceeds the limits "
            f"(max side {limits.max_side} px, max {limits.max_pixels} pixels)"
        )
    return width, height


def geometry_from_parameters(params: dict[str, str]) -> Geometry:
    """The model's input geometry from Triton config ``parameters`` (``geometry_kind`` ...); none: squeeze 16×64."""
    fields = {"kind": str, "height": int, "width": int, "sr_scale": int}
    return Geometry(**{f: cast(params[f"geometry_{f}"]) for f, cast in fields.items() if f"geometry_{f}" in params})


def geometry_parameters(geometry: Geometry) -> dict[str, str]:
    """The inverse of ``geometry_from_parameters``."""
    return {f"geometry_{k}": str(v) for k, v in geometry.to_config().items()}


def image_bytes_to_input(data: bytes, limits: ImageLimits = ImageLimits(), name: str = "image",
                         geometry: Geometry = SQUEEZE) -> np.ndarray:
    """Encoded image → the network input float32 [3, H, W] in [0, 1] (``lowres_ocr.core.geometry``); raises BadImageError."""
    data = bytes(data)
    check_header(data, limits, name)
    return lr_input(decode_image(data, name), geometry)
