from __future__ import annotations

import pytest

from lowres_ocr.core.charset import ASCII, CHARSET, NUM_CLASSES, Charset, encode


def test_ascii_charset_is_the_module_level_vocabulary() -> None:
    assert ASCII.symbols == tuple(CHARSET) and ASCII.num_classes == NUM_CLASSES == 95
    assert ASCII.encode("Az9") == encode("Az9")
    assert ASCII.decode_ids([0, *ASCII.encode("Az9"), 0]) == "Az9"


def test_ascii_head_folds_accents_and_refuses_letters_without_an_ascii_form() -> None:
    assert ASCII.clean_label("café au lait") == "cafeaulait"
    assert ASCII.clean_label("don’t") == "dont"  # punctuation without an ASCII form is dropped
    assert ASCII.clean_label("湖北abc") is None  # never shortened to its ASCII fragment
    assert ASCII.clean_label("x" * 26, max_length=25) is None


def test_a_multilingual_head_keeps_spaces_and_folds_full_width_forms() -> None:
    zh = Charset("zh", list("湖北省襄阳市 AB1"))
    assert zh.num_classes == 11
    assert zh.clean_label(" 湖北省  襄阳市 ") == "湖北省 襄阳市"
    assert zh.clean_label("ＡＢ１") == "AB1"
    assert zh.clean_label("湖南") is None
    assert zh.outside("湖南省南") == ["南"]
    ids = zh.encode("襄阳 A")
    assert zh.decode_ids([0, *ids]) == "襄阳 A"
    with pytest.raises(KeyError, match="outside the zh charset"):
        zh.encode("南")


def test_round_trip_through_text_and_bad_vocabularies() -> None:
    zh = Charset("zh", ["湖", "北", " "])
    assert Charset.from_text("zh", zh.to_text()) == zh
    with pytest.raises(ValueError, match="unique"):
        Charset("dup", ["a", "a"])
    with pytest.raises(ValueError, match="empty"):
        Charset("empty", ["a", ""])
