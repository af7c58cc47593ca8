"""The page smoke check (``lowres_ocr.page.smoke``) without a server: the sheets it sends and how answers compare."""

from __future__ import annotations

import numpy as np
import pytest

from lowres_ocr.page.reader import Region, load_page
from lowres_ocr.page.smoke import BOX_TOLERANCE_PX, SHEET_LINES, first_difference, smoke_pages


def _lines() -> list[Region]:
    quad = np.array([[10, 10], [110, 10], [110, 40], [10, 40]], np.float32)
    return [Region(quad + [0, 50 * i], text, 0.99) for i, text in enumerate(["EXPRESS", "SF123", "Beijing"])]


def test_same_reading_has_no_difference():
    assert first_difference(_lines(), _lines()) is None


def test_box_within_one_pixel_is_equal_beyond_it_is_not():
    served = _lines()
    served[1].points = served[1].points + [0.9, -0.9]
    assert first_difference(served, _lines()) is None
    served[2].points = served[2].points + [0, BOX_TOLERANCE_PX + 0.25]
    assert first_difference(served, _lines()) == "line 2 ('Beijing'): box corners 1.25 px apart (limit 1 px)"


def test_first_text_difference_is_named():
    served = _lines()
    served[1].text, served[2].text = "SF124", "Beljing"
    assert first_difference(served, _lines()) == "line 1: text 'SF124' served, 'SF123' in process"


def test_missing_line():
    diff = first_difference(_lines()[:2], _lines())
    assert diff is not None and diff.startswith("2 lines served, 3 in process")


def test_smoke_pages_are_deterministic_decodable_sheets():
    pages = smoke_pages()
    assert pages == smoke_pages() and len(pages) == 2
    for name, data in pages.items():
        rgb = load_page(data, name)
        assert rgb.shape == (480, 900, 3) and rgb.std() > 10, name


def test_shipped_model_reads_the_smoke_sheets(page_reader):
    """The sheets carry real text for the comparison: the shipped model reads every line of both in process."""
    for name, data in smoke_pages().items():
        texts = [r.text for r in page_reader.read(load_page(data, name))]
        assert texts == [text for _, text in SHEET_LINES], name


def test_page_smoke_test_needs_pages_and_a_url(page_reader):
    from lowres_ocr.page.smoke import page_smoke_test

    with pytest.raises(ValueError, match="at least one page"):
        page_smoke_test("127.0.0.1:1", None, {}, page_reader)
    with pytest.raises(ValueError, match="HTTP and/or a gRPC URL"):
        page_smoke_test(None, None, smoke_pages(), page_reader)
