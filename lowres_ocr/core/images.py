"""Image decoding shared by every stage (numpy/PIL only: the Triton python models vendor it)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

#: Largest side accepted from a client; larger images are rejected rather than resized blindly.
MAX_SIDE = 8192


class BadImageError(ValueError):
    """An input that is not a decodable image of sensible size."""


def decode_image(data: bytes | bytearray | memoryview | str | Path, name: str = "image") -> Image.Image:
    """Decode encoded bytes (or a file path) to an RGB PIL image; raises BadImageError naming ``name``."""
    if isinstance(data, (str, Path)):
        name = str(data)
        try:
            data = Path(data).read_bytes()
        except OSError as err:
            raise BadImageError(f"{name}: cannot read file ({err.strerror or err})") from None
    if len(data) == 0:
        raise BadImageError(f"{name}: empty input")
    try:
        with Image.open(io.BytesIO(bytes(data))) as img:
            img.load()
            if max(img.size) > MAX_SIDE:
                raise BadImageError(f"{name}: image of {img.size[0]}x{img.size[1]} px exceeds the {MAX_SIDE} px limit")
            return img.convert("RGB")
    except BadImageError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise BadImageError(f"{name}: not a decodable image ({type(err).__name__}: {err})") from None


def to_uint8_image(chw: np.ndarray) -> Image.Image:
    """float [3, H, W] in [0, 1] → PIL RGB image."""
    hwc = np.clip(np.asarray(chw).transpose(1, 2, 0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(hwc)
