"""``lowres-ocr data synth --source zh|mixed --split train|test``: Chinese / mixed express-sheet lines."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from lowres_ocr.cli import app
from lowres_ocr.data import cjk_fonts, express_zh
from lowres_ocr.data.express_zh import (
    ExpressText,
    held_out,
    line,
    mask_phone,
    place_split,
    places,
    shared,
)
from lowres_ocr.data.synth import synthesize
from lowres_ocr.data.synth_zh import (
    ZH_HR_HEIGHT,
    ZH_MAX_WIDTH,
    face_for,
    make_pair_zh,
    render_line,
)

CJK = re.compile(r"[\u4e00-\u9fff]")
needs_fonts = pytest.mark.skipif(
    not (cjk_fonts.faces("train") and cjk_fonts.faces("test")),
    reason="CJK fonts missing: apt-get install " + " ".join(cjk_fonts.PACKAGES) + " (scripts/bootstrap does)")


def _tree_sha(root) -> str:
    h = hashlib.sha256()
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def _lines(split: str, source: str, n: int, seed: int = 3) -> list[str]:
    gen = ExpressText(split)
    return [line(gen, np.random.default_rng([seed, i]), source) for i in range(n)]


# ------------------------------------------------------------------------------------ text, no fonts needed
def test_resources_cover_every_province_and_thousands_of_counties():
    rows = places()
    assert len({p for p, _, _ in rows}) == 34
    assert len({(p, c) for p, c, _ in rows}) >= 330
    assert len({(c, d) for _, c, d in rows if d}) >= 2500
    assert ("湖北省", "襄阳市", "樊城区") in rows


def test_zh_lines_contain_cjk_and_mixed_lines_mix_scripts():
    for split in ("train", "test"):
        zh, mixed = _lines(split, "zh", 400), _lines(split, "mixed", 400)
        assert all(CJK.search(t) and 0 < len(t) <= 25 for t in zh), [t for t in zh if not CJK.search(t)]
        assert all(re.search(r"[A-Za-z0-9]", t) and 0 < len(t) <= 25 for t in mixed)
        both = [t for t in mixed if CJK.search(t)]
        assert len(both) > 0.6 * len(mixed)  # CJK next to codes and digits in one line
        assert any(re.fullmatch(r"\d{3} [A-Z]\d{3}-\d{2} \d{2}", t) for t in mixed)  # 739 H181-02 88
        assert any(re.fullmatch(r"驿 [A-Z]\d[A-Z]", t) for t in mixed)
        assert len(set(zh)) > 380


def test_masked_phone_format():
    assert mask_phone("13512346689") == "135****6689"
    gen = ExpressText("train")
    phones = [gen.phone(np.random.default_rng([5, i])) for i in range(300)]
    masked = [p for p in phones if "*" in p]
    assert len(masked) > 120
    assert all(re.fullmatch(r"1[3-9]\d\*{4}\d{4}", p) for p in masked), masked[:5]
    assert any(re.fullmatch(r"1[3-9]\d{9}", p) for p in phones)


def test_express_kinds_present():
    zh = _lines("train", "zh", 600)
    assert any(t.endswith(("公司包", "转运中心", "中转场", "分拨中心")) for t in zh)  # sorting centres
    assert any(re.fullmatch(r".+省.+市.+[区县市].+", t) for t in zh)  # full addresses
    assert any(re.search(r"^[^*]\*+[^*]?$|^\*", t.split(":")[-1]) for t in zh)  # 张*华, 张**, *华
    assert any(t in ("韵达快递", "中通快递", "顺丰速运", "邮政EMS", "德邦快递", "极兔速递") for t in zh)
    assert any(t.endswith("有限公司") for t in zh)


def test_train_generator_never_produces_a_test_name():
    """Every name a train line is built from is not held out; every test line is built around held-out names."""
    train, test = ExpressText("train"), ExpressText("test")
    test_places = {n for p in test.places for n in p[1:] if n and not shared(n) and held_out(n)}
    train_places = {n for p in train.places for n in p[1:] if n}
    assert test_places and not test_places & train_places
    assert all(place_split(p) == "test" for p in test.places) and set(train.places).isdisjoint(test.places)
    for gen, want in ((train, False), (test, True)):
        gen.trace = []
        for source in ("zh", "mixed"):
            for i in range(1500):
                line(gen, np.random.default_rng([11, i]), source)
        assert len(gen.trace) > 1000
        wrong = [n for n in gen.trace if held_out(n) != want]
        if want:  # a test place pairs a held-out city or district with a name that may be a train one
            in_test_places = {n for p in test.places for n in p[1:]}
            wrong = [n for n in wrong if n not in in_test_places]
        assert not wrong, wrong[:10]
    persons = [ExpressText("test").person(np.random.default_rng([2, i])) for i in range(200)]
    assert all(held_out(p) for p in persons) and len(set(persons)) > 150


def test_holdout_is_about_fifteen_percent_and_deterministic():
    names = [d for _, _, d in places() if d]
    share = sum(map(held_out, names)) / len(names)
    assert 0.1 < share < 0.2
    assert held_out("樊城区") == held_out("樊城区") and express_zh.HOLDOUT_PERCENT == 15


def test_unknown_source_or_split_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="source must be one of ascii, zh, mixed"):
        synthesize(tmp_path / "x", 5, seed=0, source="klingon")
    with pytest.raises(ValueError, match="split must be one of train, test"):
        synthesize(tmp_path / "x", 5, seed=0, source="zh", split="dev")
    res = CliRunner().invoke(app, ["data", "synth", "--out", str(tmp_path / "y"), "--count", "3", "--source", "zhx"])
    assert res.exit_code == 2 and "must be one of ascii, zh, mixed" in res.output
    res = CliRunner().invoke(app, ["data", "synth", "--out", str(tmp_path / "y"), "--count", "3", "--split", "test"])
    assert res.exit_code == 2 and "--split test needs --source zh or mixed" in res.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


# ------------------------------------------------------------------------------------ rendering
def test_fonts_of_the_splits_are_disjoint():
    files = {s: {p for p, _ in cjk_fonts.FACES[s]} for s in cjk_fonts.SPLITS}
    assert not files["train"] & files["test"]
    found = {s: {(f.path, f.index) for f in cjk_fonts.faces(s)} for s in cjk_fonts.SPLITS}
    assert not found["train"] & found["test"]
    with pytest.raises(ValueError, match="split must be one of"):
        cjk_fonts.faces("dev")


@needs_fonts
def test_same_seed_same_bytes_any_workers(tmp_path):
    a = synthesize(tmp_path / "a", 24, seed=4, source="zh")
    b = synthesize(tmp_path / "b", 24, seed=4, source="zh", workers=2, chunk=5)
    c = synthesize(tmp_path / "c", 24, seed=4, source="zh", split="test")
    assert _tree_sha(a) == _tree_sha(b)
    assert (a / "labels.tsv").read_bytes() != (c / "labels.tsv").read_bytes()
    rows = [r.split("\t") for r in (a / "labels.tsv").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 24 and all(CJK.search(label) for _, _, label in rows)
    for hr_path, lr_path, _ in rows:
        hr, lr = Image.open(a / hr_path), Image.open(a / lr_path)
        assert hr.height == ZH_HR_HEIGHT and ZH_HR_HEIGHT <= hr.width <= ZH_MAX_WIDTH
        assert (lr.width, lr.height) in {(hr.width // 2, hr.height // 2), (hr.width // 3, hr.height // 3)}


@needs_fonts
def test_long_lines_get_a_smaller_font_not_cut():
    widths = []
    for i in range(40):
        text, hr, _ = make_pair_zh(8, i, "express", "zh", "train")
        widths.append(hr.shape[1] / len(text))
        assert hr.shape[0] == ZH_HR_HEIGHT and hr.shape[1] <= ZH_MAX_WIDTH and hr.std() > 5
    assert max(widths) > 1.5 * min(widths)  # px per character varies: short lines big, long lines smaller
    long = next(t for t in _lines("train", "zh", 400) if len(t) >= 22)
    ref = face_for(long, cjk_fonts.faces("train"), 0)
    hr = render_line(long, ref, np.random.default_rng(0))
    ink_cols = np.flatnonzero((np.abs(hr.astype(int) - hr[:, :2].mean((0, 1))).sum(2) > 60).any(0))
    assert hr.shape[1] == ZH_MAX_WIDTH or ink_cols[-1] < hr.shape[1] - 1  # whole line inside the crop


@needs_fonts
def test_test_split_renders_only_test_fonts(monkeypatch):
    from lowres_ocr.data import synth_zh

    used = []
    real = synth_zh.face_for

    def spy(text, faces, start):
        ref = real(text, faces, start)
        used.append(ref)
        return ref

    monkeypatch.setattr(synth_zh, "face_for", spy)
    for i in range(30):
        make_pair_zh(1, i, "seed", "mixed", "test")
    test_faces = {(f.path, f.index) for f in cjk_fonts.faces("test")}
    assert used and set(used) <= test_faces


def test_ascii_output_unchanged(tmp_path):
    """The default source writes the bytes it wrote before --source existed (sha of a 40-pair run)."""
    out = synthesize(tmp_path / "a", 40, seed=7)
    assert _tree_sha(out) == ASCII_SHA_SEED7_40
    assert _tree_sha(synthesize(tmp_path / "b", 40, seed=7, source="ascii", split="train")) == ASCII_SHA_SEED7_40


#: ``_tree_sha`` of ``synthesize(out, 40, seed=7)`` at the commit before the zh/mixed sources
ASCII_SHA_SEED7_40 = "a5a4823deb197986bee4209a2484730832fa45b3f902a577ead22443184e7592"
