from __future__ import annotations

import pytest

from lowres_ocr.data.datasets import label_problem, read_folder

from .conftest import png_bytes


def test_words_and_pairs_kinds(make_folder):
    w = make_folder({"images/a.png": png_bytes()}, ["images/a.png\tHello"], "w")
    ds = read_folder(w)
    assert (ds.kind, [(r.line, r.label, r.paths) for r in ds.rows], ds.problems) == ("words", [(1, "Hello", ("images/a.png",))], [])
    p = make_folder({}, ["hr/1.png\tlr/1.png\tAB", "hr/2.png\tlr/2.png\tC d"], "p")
    ds = read_folder(p)
    assert ds.kind == "pairs" and [r.paths for r in ds.rows] == [("hr/1.png", "lr/1.png"), ("hr/2.png", "lr/2.png")]
    assert ds.rows[1].label == "C d"  # labels are kept as written


def test_structural_problems_are_reported_and_good_rows_kept(make_folder):
    lines = [
        b"\xef\xbb\xbfa.png\tfirst",  # BOM is not part of the path
        "b.png\tsecond\r",  # CRLF
        "",  # blank lines are ignored
        "no-tab-here",
        "c.png\tx\ty",
        b"d.png\tcaf\xe9",  # latin-1, not UTF-8
        "a.png\tagain",
        "../up.png\tescape",
        "\tnopath",
        "e.png\t",
    ]
    ds = read_folder(make_folder({}, lines))
    assert [(r.line, r.label) for r in ds.rows] == [(1, "first"), (2, "second"), (10, "")]
    got = [(p.where.rsplit(":", 1)[1], p.reason) for p in ds.problems]
    assert got == [("6", "wrong_encoding"), ("4", "malformed_line"), ("5", "malformed_line"),
                   ("7", "duplicate_path"), ("8", "malformed_line"), ("9", "malformed_line")]
    assert "already used on line 1" in str(ds.problems[3])
    assert "labels.tsv:6" in str(ds.problems[0]) and "0xe9" in str(ds.problems[0])


def test_missing_folder_or_labels(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_folder(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="labels.tsv not found"):
        read_folder(tmp_path)


def test_label_problem():
    assert label_problem("ok") is None
    assert label_problem("")[0] == "empty_label"
    assert label_problem("a" * 26, max_length=25)[0] == "too_long"
    assert label_problem("a" * 26, max_length=0) is None
    assert label_problem("two words")[0] == "outside_charset"
    assert label_problem("café")[1].endswith("'é'")
    assert label_problem("two words", charset=None) is None
