"""Shared fixtures of the page tests: the shipped model, a rendered synthetic express sheet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "model" / "lowres_ocr.pt"
FONT = ROOT / "lowres_ocr" / "fonts" / "DejaVuSansCondensed-Bold.ttf"
BACKGROUND = (246, 244, 238)

#: (top-left corner before rotation, text, is it Chinese) in reading order
SHEET_LINES = [
    ((60, 50), "EXPRESS", False),
    ((420, 50), "SF1234567", False),
    ((60, 150), "Beijing", False),
    ((60, 250), "收件人 张三", True),
    ((60, 350), "PACKAGE", False),
    ((60, 450), "寄件地址 上海市", True),
]
SHEET_ANGLE = 3.0  # degrees, counter-clockwise


def _cjk_font(size: int) -> ImageFont.FreeTypeFont:
    from lowres_ocr.page.render import font_path

    path = font_path()
    if path is None:
        pytest.skip("no CJK font installed")
    return ImageFont.truetype(path, size)


def _rotate_point(x: float, y: float, size: tuple[int, int]) -> tuple[float, float]:
    """Where (x, y) lands after PIL's ``rotate(SHEET_ANGLE)`` about the image centre."""
    cx, cy = size[0] / 2, size[1] / 2
    a = np.radians(SHEET_ANGLE)
    dx, dy = x - cx, y - cy
    return cx + dx * np.cos(a) + dy * np.sin(a), cy - dx * np.sin(a) + dy * np.cos(a)


@pytest.fixture(scope="session")
def express_sheet(tmp_path_factory) -> tuple[Path, list[tuple[str, bool, tuple[float, float]]]]:
    """A 900x600 sheet of English and Chinese lines, rotated 3°; returns its path and (text, zh, centre) per line."""
    img = Image.new("RGB", (900, 600), BACKGROUND)
    draw = ImageDraw.Draw(img)
    latin, cjk = ImageFont.truetype(str(FONT), 30), _cjk_font(30)
    lines = []
    for xy, text, zh in SHEET_LINES:
        font = cjk if zh else latin
        draw.text(xy, text, fill=(20, 20, 30), font=font)
        x0, y0, x1, y1 = draw.textbbox(xy, text, font=font)
        lines.append((text, zh, _rotate_point((x0 + x1) / 2, (y0 + y1) / 2, img.size)))
    img = img.rotate(SHEET_ANGLE, resample=Image.BICUBIC, fillcolor=BACKGROUND)
    path = tmp_path_factory.mktemp("sheet") / "sheet.png"
    img.save(path)
    return path, lines


def shipped_reads_chinese() -> bool:
    """Whether the shipped model's charset has CJK characters (``charset: ppocr``) or is the 94-char ASCII head."""
    from lowres_ocr.network import load_model

    return "张" in load_model(WEIGHTS)[0].charset.symbols


def readable_lines(lines: list[tuple[str, bool, tuple[float, float]]], chinese: bool) -> list[str]:
    """The sheet's lines the shipped model is expected to read, spaces removed (the ASCII head has no space and no
    CJK class: it reads the English lines only; a CJK charset reads every line)."""
    return [text.replace(" ", "") for text, zh, _ in lines if chinese or not zh]


def read_lines(texts: list[str]) -> list[str]:
    """Non-empty read texts, spaces removed (compared with :func:`readable_lines`)."""
    return [t.replace(" ", "") for t in texts if t.strip()]


@pytest.fixture(scope="session")
def page_reader():
    """The shipped recognizer with the rapidocr detector (skips when either is missing)."""
    if not WEIGHTS.is_file():
        pytest.skip(f"{WEIGHTS} not present")
    pytest.importorskip("rapidocr")
    from lowres_ocr.page.reader import PageReader

    return PageReader.load(WEIGHTS)
