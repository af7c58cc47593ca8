"""Smoke test of the served page endpoint ``lowres_ocr_page`` (the pipeline's smoke_test step, when it is served).

Whole pages go over HTTP and gRPC and each answer must read as the in-process :class:`PageReader` reads the same
bytes: the same lines in the same order, texts equal, every box corner within ``BOX_TOLERANCE_PX``. The pages are
express sheets rendered here with the fonts shipped in the package, so a pipeline pod (which has no tests/ folder)
can make them. A non-image must be refused (400 / INVALID_ARGUMENT) and the next page answered again.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from lowres_ocr.page.reader import PageReader, Region, load_page
from lowres_ocr.serving.smoke import ProtocolResult, SmokeReport, refuse_and_recover, run_protocol, targets

BOX_TOLERANCE_PX = 1.0
FONT_DIR = Path(__file__).resolve().parent.parent / "fonts"
BACKGROUND = (246, 244, 238)
INK = (20, 20, 30)
#: (top-left corner, text) of the lines of a smoke sheet
SHEET_LINES = (((60, 50), "EXPRESS"), ((420, 50), "SF1234567890"), ((60, 150), "Beijing"),
               ((60, 250), "PACKAGE"), ((60, 350), "021-5550199"), ((420, 350), "2.5KG"))
#: name → (font file in lowres_ocr/fonts, size in px, counter-clockwise rotation in degrees)
SHEETS = {"sheet_upright.png": ("DejaVuSansCondensed-Bold.ttf", 30, 0.0),
          "sheet_rotated.png": ("LiberationSans-Bold.ttf", 32, 3.0)}


def render_sheet(font_file: str, size: int, angle: float, canvas: tuple[int, int] = (900, 480)) -> bytes:
    """A PNG express sheet with ``SHEET_LINES`` in one shipped font, rotated by ``angle`` degrees."""
    img = Image.new("RGB", canvas, BACKGROUND)
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(FONT_DIR / font_file), size)
    for xy, text in SHEET_LINES:
        draw.text(xy, text, fill=INK, font=font)
    if angle:
        img = img.rotate(angle, resample=Image.BICUBIC, fillcolor=BACKGROUND)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def smoke_pages() -> dict[str, bytes]:
    """The pages the smoke test sends: name → PNG bytes (deterministic)."""
    return {name: render_sheet(*spec) for name, spec in SHEETS.items()}


def first_difference(served: list[Region], expected: list[Region], tolerance: float = BOX_TOLERANCE_PX) -> str | None:
    """None when ``served`` reads as ``expected``; else the first difference in words."""
    if len(served) != len(expected):
        return (f"{len(served)} lines served, {len(expected)} in process "
                f"({[r.text for r in served]} vs {[r.text for r in expected]})")
    for i, (got, want) in enumerate(zip(served, expected)):
        if got.text != want.text:
            return f"line {i}: text {got.text!r} served, {want.text!r} in process"
        off = float(np.abs(np.asarray(got.points, np.float64) - np.asarray(want.points, np.float64)).max())
        if off > tolerance:
            return f"line {i} ({want.text!r}): box corners {off:.2f} px apart (limit {tolerance:g} px)"
    return None


def _pages(pages: dict[str, bytes], expected: dict[str, list[Region]],
           tolerance: float) -> Callable[[Any, ProtocolResult], None]:
    def body(client: Any, res: ProtocolResult) -> None:
        texts: dict[str, list[str]] = {}
        for name, data in pages.items():
            served = client.read(data)
            texts[name] = [r.text for r in served]
            res.predicted += 1
            diff = first_difference(served, expected[name], tolerance)
            if diff is not None:
                res.errors.append(f"{name}: {diff}")
        res.matched = res.predicted - len(res.errors)
        name = next(iter(pages))
        refuse_and_recover(res, lambda data: [r.text for r in client.read(data)], pages[name], texts[name])

    return body


def page_smoke_test(http_url: str | None, grpc_url: str | None, pages: dict[str, bytes], reader: PageReader,
                    tolerance: float = BOX_TOLERANCE_PX) -> SmokeReport:
    """Send ``pages`` (name → encoded image) to ``lowres_ocr_page`` over each protocol; compare with ``reader``."""
    from lowres_ocr.page.client import PageClient

    if not pages:
        raise ValueError("page_smoke_test needs at least one page")
    urls = targets(http_url, grpc_url)
    expected = {name: reader.read(load_page(data, name)) for name, data in pages.items()}
    return SmokeReport([run_protocol(p, u, PageClient, _pages(pages, expected, tolerance)) for p, u in urls])
