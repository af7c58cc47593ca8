from __future__ import annotations

import filecmp
import io

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from lowres_ocr.core.charset import MAX_LABEL_LENGTH, outside_charset
from lowres_ocr.cli import app
from lowres_ocr.data.lmdb_io import LmdbReader
from lowres_ocr.data.synth import font_files, make_pair, random_text, synthesize


def _same_tree(a, b) -> bool:
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    if files != sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()):
        return False
    return all(filecmp.cmp(a / f, b / f, shallow=False) for f in files)


def test_same_seed_same_bytes_any_workers(tmp_path):
    a = synthesize(tmp_path / "a", 60, seed=1)
    b = synthesize(tmp_path / "b", 60, seed=1, workers=2, chunk=7)
    c = synthesize(tmp_path / "c", 60, seed=2)
    assert _same_tree(a, b)
    assert (a / "labels.tsv").read_bytes() != (c / "labels.tsv").read_bytes()


def test_folder_format_sizes_and_labels(tmp_path):
    out = synthesize(tmp_path / "s", 40, seed=3)
    lines = (out / "labels.tsv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 40 and lines[0].startswith("hr/000000001.png\tlr/000000001.png\t")
    for line in lines:
        hr, lr, label = line.split("\t")
        assert label and len(label) <= MAX_LABEL_LENGTH and not outside_charset(label)
        assert Image.open(out / hr).size == (128, 32) and Image.open(out / lr).size == (64, 16)


def test_text_mix_covers_parcel_strings():
    texts = [random_text(np.random.default_rng([9, i])) for i in range(600)]
    assert all(t and len(t) <= MAX_LABEL_LENGTH and not outside_charset(t) for t in texts)
    assert any(t.islower() and t.isalpha() for t in texts) and any(t.isupper() and t.isalpha() for t in texts)
    assert sum(t.isdigit() for t in texts) > 20  # numbers, postcodes, tracking numbers
    assert any("-" in t and sum(c.isdigit() for c in t) >= 10 for t in texts)  # phone numbers
    assert sum(any(c in "#.:/()-" for c in t) for t in texts) > 60  # punctuation
    assert len(set(texts)) > 550


def test_fonts_and_visual_variety():
    assert len(font_files()) >= 10
    pairs = [make_pair(5, i) for i in range(30)]
    backgrounds = {tuple(hr[0, 0] // 32) for _, hr, _ in pairs}
    assert len(backgrounds) > 5
    for text, hr, lr in pairs:
        assert hr.shape == (32, 128, 3) and lr.shape == (16, 64, 3)
        assert hr.std() > 10  # text is visible on the background


def test_cli_synth_then_build_lmdb(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["data", "synth", "--out", str(tmp_path / "d"), "--count", "50", "--seed", "1"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["data", "build-lmdb", str(tmp_path / "d"), "--out", str(tmp_path / "l")])
    assert res.exit_code == 0, res.output
    r = LmdbReader(tmp_path / "l")
    assert (r.kind, len(r)) == ("pairs", 50)
    assert Image.open(io.BytesIO(r[0].lr)).size == (64, 16)
    res = runner.invoke(app, ["data", "synth", "--out", str(tmp_path / "d"), "--count", "5"])
    assert res.exit_code == 2 and "already exists" in res.output


@pytest.mark.slow
def test_synth_500_twice_byte_identical_and_lmdb_500(tmp_path):
    a = synthesize(tmp_path / "a", 500, seed=1)
    b = synthesize(tmp_path / "b", 500, seed=1)
    assert _same_tree(a, b)
    res = CliRunner().invoke(app, ["data", "build-lmdb", str(a), "--out", str(tmp_path / "l")])
    assert res.exit_code == 0, res.output
    assert len(LmdbReader(tmp_path / "l")) == 500


def test_png_writer_is_lossless():
    from lowres_ocr.data.synth import _png

    for i in range(20):
        _, hr, lr = make_pair(4, i)
        for a in (hr, lr):
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(_png(a))).convert("RGB")), a)
