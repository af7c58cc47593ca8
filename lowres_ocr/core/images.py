"""Image decoding shared by every stage (numpy/PIL only: the Triton python models vendor it).

Hostile input (tests/serving/test_fuzz_images.py): only the formats in ``FORMATS`` are parsed, a header that
declares a decompression bomb is refused, and whatever a decoder raises on malformed bytes becomes a
``BadImageError`` naming the input. The decoded image is turned upright by its EXIF orientation and
converted to RGB with 16-bit and float grey scaled to 8 bits (``to_rgb``).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Largest side accepted from a client; larger images are rejected rather than resized blindly.
MAX_SIDE = 8192
#: The only formats parsed: what clients and the datasets send (a JPEG with a second picture, MPO, is
#: opened by the JPEG plugin). Every other Pillow plugin (EPS through Ghostscript, PSD, ICO, FITS, ...)
#: is never reached.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")
#: What Pillow raises on malformed bytes; each becomes a BadImageError. TypeError: a TIFF whose strip
#: offsets are typed RATIONAL fails in ``load`` (tests/serving/test_fuzz_images.py keeps that input).
DECODER_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, TypeError, Image.DecompressionBombError)
#: EXIF tag of the orientation (1 = upright).
ORIENTATION = 0x0112


class BadImageError(ValueError):
    """An input that is not a decodable image of sensible size."""


def not_decodable(name: str, err: BaseException) -> BadImageError:
    """The BadImageError for ``err`` raised while parsing ``name``."""
    if isinstance(err, Image.DecompressionBombError):
        return BadImageError(f"{name}: image header declares a size over the decoder's limit ({err})")
    return BadImageError(f"{name}: not a decodable image ({type(err).__name__}: {err})")


def open_image(data: bytes, name: str = "image") -> Image.Image:
    """Parse the header of one of ``FORMATS`` (pixels not decoded yet); raises BadImageError."""
    try:
        return Image.open(io.BytesIO(data), formats=FORMATS)
    except DECODER_ERRORS as err:
        raise not_decodable(name, err) from None


def to_rgb(img: Image.Image) -> Image.Image:
    """Any mode → RGB. 16-bit grey keeps its high byte; 32-bit integer grey above 255 is read as 16-bit;
    float grey within [0, 1] is scaled by 255 (else clipped to [0, 255], NaN as 0); other modes convert as
    Pillow does (palette looked up, CMYK inverted, alpha dropped)."""
    if img.mode.startswith("I;16"):
        return Image.fromarray((np.asarray(img).astype(np.uint16) >> 8).astype(np.uint8)).convert("RGB")
    if img.mode in ("I", "F"):
        arr = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        top = float(arr.max(initial=0.0))
        if img.mode == "F":
            scale = 255.0 if top <= 1.0 else 1.0
        else:
            scale = 255.0 / 65535.0 if top > 255.0 else 1.0
        return Image.fromarray(np.clip(arr * scale + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
    return img.convert("RGB")


def upright(img: Image.Image) -> Image.Image:
    """``img`` turned by its EXIF orientation (tag 274), unchanged without one or with an unreadable one."""
    try:
        orientation = img.getexif().get(ORIENTATION)
    except DECODER_ERRORS:
        return img
    if orientation not in (2, 3, 4, 5, 6, 7, 8):
        return img
    return ImageOps.exif_transpose(img)


def decode_image(data: bytes | bytearray | memoryview | str | Path, name: str = "image") -> Image.Image:
    """Decode encoded bytes (or a file path) to an upright RGB PIL image; raises BadImageError naming ``name``."""
    if isinstance(data, (str, Path)):
        name = str(data)
        try:
            data = Path(data).read_bytes()
        except OSError as err:
            raise BadImageError(f"{name}: cannot read file ({err.strerror or err})") from None
    if len(data) == 0:
        raise BadImageError(f"{name}: empty input")
    with open_image(bytes(data), name) as img:
        if max(img.size) > MAX_SIDE:
            raise BadImageError(f"{name}: image of {img.size[0]}x{img.size[1]} px exceeds the {MAX_SIDE} px limit")
        try:
            img.load()
            return to_rgb(upright(img))
        except DECODER_ERRORS as err:
            raise not_decodable(name, err) from None


def to_uint8_image(chw: np.ndarray) -> Image.Image:
    """float [3, H, W] in [0, 1] → PIL RGB image."""
    hwc = np.clip(np.asarray(chw).transpose(1, 2, 0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(hwc)
