"""The two-panel picture of a read page: the sheet with its regions drawn, and the recognised text in place."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: CJK-capable fonts tried in order; PIL's default font when none is installed.
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
)
BOX_COLOUR = (230, 40, 40)
WORD_COLOUR = (40, 110, 230)


def font_path() -> str | None:
    """The first installed font of ``FONT_CANDIDATES``, or None."""
    return next((p for p in FONT_CANDIDATES if Path(p).is_file()), None)


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    path = font_path()
    if path is None:
        return ImageFont.load_default()
    return ImageFont.truetype(path, size)


def _fitted_font(text: str, width: float, height: float) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """The largest font (≤ 0.8 × ``height``) whose rendering of ``text`` fits ``width``."""
    size = max(8, int(height * 0.8))
    font = _font(size)
    if not hasattr(font, "getlength"):
        return font
    length = font.getlength(text) or 1.0
    if length > width and size > 8:
        font = _font(max(8, int(size * width / length)))
    return font


def _polygon(draw: ImageDraw.ImageDraw, points: list[list[float]], colour: tuple[int, int, int], width: int) -> None:
    pts = [tuple(p) for p in points]
    draw.line([*pts, pts[0]], fill=colour, width=width)


def render_page(rgb: np.ndarray, regions: list[dict]) -> Image.Image:
    """Side by side: the page with each region's quad (and word quads) drawn, and a blank panel with the text."""
    page = Image.fromarray(np.asarray(rgb, dtype=np.uint8)).convert("RGB")
    w, h = page.size
    line = max(1, round(max(w, h) / 600))
    figure = Image.new("RGB", (2 * w, h), "white")
    figure.paste(page, (0, 0))
    draw = ImageDraw.Draw(figure)
    for region in regions:
        pts = np.asarray(region["points"], dtype=np.float32)
        for word in region.get("words", []):
            _polygon(draw, word["points"], WORD_COLOUR, line)
        _polygon(draw, pts.tolist(), BOX_COLOUR, line)
        _polygon(draw, (pts + [w, 0]).tolist(), (200, 200, 200), line)
        x0, y0 = pts.min(0)
        x1, y1 = pts.max(0)
        text = region["text"]
        if text:
            font = _fitted_font(text, x1 - x0, y1 - y0)
            draw.text((w + x0, (y0 + y1) / 2), text, fill=(0, 0, 0), font=font, anchor="lm")
    draw.line([(w, 0), (w, h)], fill=(120, 120, 120), width=line)
    return figure
