"""Synthetic express-sheet-like LR/HR pairs: rendered HR word crops (128×32) + their degraded LR (64×16).

Text: dictionary words (SCOWL list shipped in ``resources/words.txt``) in several casings, and the strings
printed on parcel labels — tracking numbers, phone numbers, postcodes, weights, dates, references. Labels
stay inside the 94-char charset (no spaces) and ≤ 25 characters.

Rendering uses only the fonts shipped in ``lowres_ocr/fonts`` and a generator seeded with ``(seed, index)``
per sample, so the output is byte-identical for a seed, whatever the chunking or number of workers.

That is the ``ascii`` source. ``synthesize(..., source="zh" | "mixed", split="train" | "test")`` writes Chinese /
mixed-script express-sheet lines instead (``synth_zh``: wider crops, CJK fonts and names disjoint between
the splits); the folder format is the same.
"""

from __future__ import annotations

import os
import shutil
import string
import struct
import tempfile
import zlib
from collections.abc import Callable
from functools import lru_cache, partial
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from lowres_ocr.core.charset import MAX_LABEL_LENGTH, outside_charset
from lowres_ocr.data.degrade import degrade_array
from lowres_ocr.core.geometry import HR_SIZE

FONT_DIR = Path(__file__).resolve().parent.parent / "fonts"
WORDS_FILE = Path(__file__).resolve().parent / "resources" / "words.txt"
UPPER, LOWER, DIGITS = string.ascii_uppercase, string.ascii_lowercase, string.digits


@lru_cache(maxsize=1)
def font_files() -> tuple[Path, ...]:
    files = tuple(sorted(p for p in FONT_DIR.glob("*.ttf")))
    if not files:
        raise FileNotFoundError(f"no .ttf fonts in {FONT_DIR} (the package is incomplete)")
    return files


@lru_cache(maxsize=1)
def words() -> tuple[str, ...]:
    return tuple(w for w in WORDS_FILE.read_text(encoding="ascii").split() if w)


#: a font face: (file, face index inside a .ttc collection; 0 for a .ttf)
FontRef = tuple[str, int]


def ascii_font(index: int) -> FontRef:
    return str(font_files()[index]), 0


@lru_cache(maxsize=512)
def load_font(ref: FontRef, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(ref[0], size, index=ref[1])


# ------------------------------------------------------------------------------------------- text
def _pick(rng: np.random.Generator, alphabet: str, n: int) -> str:
    return "".join(alphabet[i] for i in (rng.random(n) * len(alphabet)).astype(np.intp))


def _word(rng: np.random.Generator) -> str:
    w = words()[int(rng.random() * len(words()))]
    case = rng.random()
    if case < 0.35:
        return w.lower()
    if case < 0.65:
        return w.upper()
    if case < 0.9:
        return w[0].upper() + w[1:].lower()
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in w)  # mixed case


def _tracking(rng: np.random.Generator) -> str:
    kind = int(rng.integers(4))
    if kind == 0:  # UPU S10: two letters, 9 digits, country
        return _pick(rng, UPPER, 2) + _pick(rng, DIGITS, 9) + _pick(rng, UPPER, 2)
    if kind == 1:  # UPS-like
        return "1Z" + _pick(rng, UPPER + DIGITS, 16)
    if kind == 2:  # long numeric
        return _pick(rng, DIGITS, int(rng.choice([12, 15, 20, 22])))
    return _pick(rng, UPPER, int(rng.integers(2, 5))) + _pick(rng, DIGITS, int(rng.integers(8, 14)))


def _phone(rng: np.random.Generator) -> str:
    d = lambda n: _pick(rng, DIGITS, n)  # noqa: E731
    kind = int(rng.integers(5))
    return [
        lambda: f"({d(3)}){d(3)}-{d(4)}",
        lambda: f"{d(3)}-{d(3)}-{d(4)}",
        lambda: f"+{rng.integers(1, 99)}-{d(2)}-{d(4)}-{d(4)}",
        lambda: f"1{d(2)}{d(8)}",
        lambda: f"Tel:{d(3)}.{d(3)}.{d(4)}",
    ][kind]()


def _postcode(rng: np.random.Generator) -> str:
    d = lambda n: _pick(rng, DIGITS, n)  # noqa: E731
    u = lambda n: _pick(rng, UPPER, n)  # noqa: E731
    kind = int(rng.integers(6))
    return [
        lambda: d(5),  # US / DE / FR
        lambda: f"{d(5)}-{d(4)}",  # ZIP+4
        lambda: f"{u(2)}{d(1)}{u(1)}{d(1)}{u(2)}",  # UK without the space
        lambda: f"{u(1)}{d(1)}{u(1)}{d(1)}{u(1)}{d(1)}",  # Canada
        lambda: f"{d(4)}{u(2)}",  # NL
        lambda: d(6),  # CN / IN
    ][kind]()


def _misc(rng: np.random.Generator) -> str:
    n = lambda lo, hi: int(rng.integers(lo, hi))  # noqa: E731
    kind = n(0, 7)
    return [
        lambda: f"{rng.integers(1, 99)}.{rng.integers(0, 10)}kg",  # weight
        lambda: f"{rng.integers(2000, 2031)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}",  # ISO date
        lambda: f"{rng.integers(1, 29):02d}/{rng.integers(1, 13):02d}/{rng.integers(0, 100):02d}",  # dd/mm/yy
        lambda: "#" + _pick(rng, DIGITS, n(3, 9)),
        lambda: ["Ref:", "No.", "Order#", "PO:", "ID:"][n(0, 5)] + _pick(rng, UPPER + DIGITS, n(3, 9)),
        lambda: _pick(rng, DIGITS, n(1, 11)),
        lambda: _pick(rng, UPPER, 1) + "-" + _pick(rng, DIGITS, n(1, 5)) + _pick(rng, "!?.,;:*&%$@+=/()[]", 1),
    ][kind]()


#: (generator, weight)
TEXT_KINDS: tuple[tuple[Callable[[np.random.Generator], str], float], ...] = (
    (_word, 0.45), (_tracking, 0.15), (_phone, 0.1), (_postcode, 0.1), (_misc, 0.2),
)
_KIND_CDF = np.cumsum([w for _, w in TEXT_KINDS]) / sum(w for _, w in TEXT_KINDS)


def random_text(rng: np.random.Generator) -> str:
    gen = TEXT_KINDS[int(np.searchsorted(_KIND_CDF, rng.random(), side="right"))][0]
    text = gen(rng)[:MAX_LABEL_LENGTH]
    assert not outside_charset(text), text
    return text


# ------------------------------------------------------------------------------------------- image
def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Background and ink colours with enough luminance contrast (either polarity)."""
    bg_light = rng.random() < 0.8
    lum_bg = rng.uniform(150, 255) if bg_light else rng.uniform(0, 90)
    lum_fg = rng.uniform(0, lum_bg - 100) if bg_light else rng.uniform(lum_bg + 100, 255)
    tint = rng.standard_normal(6, dtype=np.float32)
    return np.clip(lum_bg + 20 * tint[:3], 0, 255), np.clip(lum_fg + 35 * tint[3:], 0, 255)


def _background(rng: np.random.Generator, colour: np.ndarray, size: tuple[int, int] = HR_SIZE) -> np.ndarray:
    """float32 [H, W, 3] of ``size`` (W, H): flat paper, a gradient, print grain, or a printed rule."""
    w, h = size
    base = np.empty((h, w, 3), np.float32)
    base[:] = colour
    kind = rng.random()
    if kind < 0.3:  # linear gradient, horizontal or vertical
        ramp = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :, None] if rng.random() < 0.7 \
            else np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None, None]
        base += ramp * rng.uniform(10, 45)
    elif kind < 0.55:  # paper grain / print texture
        grain = rng.standard_normal((h // 2, w // 2), dtype=np.float32)
        base += cv2.resize(grain, (w, h), interpolation=cv2.INTER_LINEAR)[:, :, None] * rng.uniform(4, 14)
    elif kind < 0.65:  # a printed rule or box edge crossing the crop
        y = 1 + int(rng.random() * (h - 2))
        base[y - 1:y + 1] *= rng.uniform(0.3, 0.8)
    return base


@lru_cache(maxsize=None)
def _glyph(ref: FontRef, size: int, ch: str) -> tuple[np.ndarray, int, int, float]:
    """(coverage, x offset, y offset from the ascender line, advance) of one character, rasterised once."""
    font = load_font(ref, size)
    left, top, right, bottom = font.getbbox(ch)
    img = Image.new("L", (max(1, right - left), max(1, bottom - top)))
    ImageDraw.Draw(img).text((-left, -top), ch, font=font, fill=255)
    return np.asarray(img), left, top, font.getlength(ch)


def ink_mask(text: str, ref: FontRef, size: int, spacing: float = 0.0) -> np.ndarray:
    """uint8 coverage of ``text`` cropped to its ink; glyphs come from a cache, ``spacing`` is in em."""
    glyphs = [_glyph(ref, size, ch) for ch in text]
    ascent, descent = load_font(ref, size).getmetrics()
    xs, x = [], 0.0
    for _, _, _, adv in glyphs:
        xs.append(int(round(x)))
        x += adv + spacing * size
    width = max(xo + gx + g.shape[1] for (g, gx, _, _), xo in zip(glyphs, xs)) + size
    canvas = np.zeros((ascent + descent + size, width + size), np.uint8)
    for (g, gx, gy, _), xo in zip(glyphs, xs):
        y0, x0 = max(0, gy), max(0, xo + gx + size // 2)
        region = canvas[y0:y0 + g.shape[0], x0:x0 + g.shape[1]]
        np.maximum(region, g[:region.shape[0], :region.shape[1]], out=region)
    rows, cols = np.flatnonzero(canvas.any(axis=1)), np.flatnonzero(canvas.any(axis=0))
    if rows.size == 0:
        raise ValueError(f"font {Path(ref[0]).name} renders no ink for {text!r}")
    return canvas[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def render_hr(text: str, rng: np.random.Generator) -> np.ndarray:
    """``text`` in a random font and colours on a random background, stretched to 128×32 (RGB uint8)."""
    spacing = rng.uniform(-0.04, 0.12) if rng.random() < 0.5 else 0.0
    # two raster sizes only: the crop is stretched to 128x32 anyway, and few sizes keep the glyph cache warm
    mask = ink_mask(text, ascii_font(int(rng.random() * len(font_files()))), (22, 30)[int(rng.random() * 2)], spacing)
    h, w = mask.shape
    pad_x, pad_y = 2 + int(rng.random() * 12), 2 + int(rng.random() * 8)
    padded = np.zeros((h + 2 * pad_y, w + 2 * pad_x), np.uint8)
    padded[pad_y:pad_y + h, pad_x:pad_x + w] = mask
    small = padded.shape[1] <= HR_SIZE[0] and padded.shape[0] <= HR_SIZE[1]
    alpha = cv2.resize(padded, HR_SIZE, interpolation=cv2.INTER_CUBIC if small else cv2.INTER_AREA)
    return paint(alpha, rng)


def paint(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage ``alpha`` (uint8 [H, W]) in random colours on a random background, RGB uint8 [H, W, 3]."""
    bg, fg = _colours(rng)
    out = _background(rng, bg, (alpha.shape[1], alpha.shape[0]))
    a = alpha.astype(np.float32)[:, :, None] * np.float32(1 / 255)
    out += (fg.astype(np.float32) - out) * a
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def make_pair(seed: int, index: int, strength: str = "express") -> tuple[str, np.ndarray, np.ndarray]:
    """Sample ``index`` of the stream ``seed``: (label, HR [32,128,3], LR [16,64,3])."""
    rng = np.random.default_rng([seed, index])
    text = random_text(rng)
    hr = render_hr(text, rng)
    return text, hr, degrade_array(hr, rng, strength)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(rgb: np.ndarray) -> bytes:
    """8-bit RGB PNG, every row with the Sub filter, zlib level 1 (faster than libpng's adaptive filters)."""
    h, w, _ = rgb.shape
    flat = rgb.reshape(h, w * 3)
    rows = np.empty((h, w * 3 + 1), np.uint8)
    rows[:, 0] = 1  # filter type Sub: each byte minus the same channel of the pixel to its left (mod 256)
    rows[:, 1:4] = flat[:, :3]
    np.subtract(flat[:, 3:], flat[:, :-3], out=rows[:, 4:])
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 1))
            + _png_chunk(b"IEND", b""))


SOURCES = ("ascii", "zh", "mixed")
SPLITS = ("train", "test")


def _check_source(source: str, split: str) -> None:
    """ValueError for an unknown source or split; FileNotFoundError when the split's CJK fonts are missing."""
    if source not in SOURCES:
        raise ValueError(f"--source must be one of {', '.join(SOURCES)}, got {source!r}")
    if split not in SPLITS:
        raise ValueError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    if source == "ascii":
        if split != "train":
            raise ValueError("--split test needs --source zh or mixed (the ascii source has no held-out split)")
        return
    from lowres_ocr.data.cjk_fonts import require

    require(split)


def _write_range(args: tuple[str, int, int, int, str, str, str]) -> list[str]:
    out, seed, start, stop, strength, source, split = args
    cv2.setNumThreads(1)  # tiny images: OpenCV's thread pool only adds overhead
    pair: Callable[[int, int, str], tuple[str, np.ndarray, np.ndarray]] = make_pair
    if source != "ascii":
        # imported here: synth_zh imports this module
        from lowres_ocr.data.synth_zh import make_pair_zh

        pair = partial(make_pair_zh, source=source, split=split)
    lines = []
    for i in range(start, stop):
        text, hr, lr = pair(seed, i, strength)
        name = f"{i:09d}.png"
        Path(out, "hr", name).write_bytes(_png(hr))
        Path(out, "lr", name).write_bytes(_png(lr))
        lines.append(f"hr/{name}\tlr/{name}\t{text}")
    return lines


def synthesize(out: str | Path, count: int, seed: int, workers: int = 1, strength: str = "express",
               overwrite: bool = False, chunk: int = 250, source: str = "ascii", split: str = "train") -> Path:
    """Write ``count`` pairs as a dataset folder (``hr/``, ``lr/``, ``labels.tsv``), 1-based names.

    The folder is built aside and renamed into place, so ``out`` never holds a partial set.
    """
    out = Path(out)
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    _check_source(source, split)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists (use --force to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        (tmp / "hr").mkdir()
        (tmp / "lr").mkdir()
        jobs = [(str(tmp), seed, a, min(a + chunk, count + 1), strength, source, split)
                for a in range(1, count + 1, chunk)]
        if workers > 1:
            with get_context("spawn").Pool(workers) as pool:
                parts = pool.map(_write_range, jobs)
        else:
            parts = [_write_range(j) for j in jobs]
        (tmp / "labels.tsv").write_text("".join(line + "\n" for part in parts for line in part), encoding="utf-8")
        os.chmod(tmp, 0o755)
        if out.exists():
            shutil.rmtree(out)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
