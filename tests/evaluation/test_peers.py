"""Peers on real crops: they read text (recognition only), and a missing one is reported, not fatal."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from lowres_ocr.evaluation.runner import Options, evaluate_sets
from lowres_ocr.evaluation.peers import PeerUnavailable, RapidOcrPeer, TesseractPeer, load_peer

from .conftest import FakePredictor

OPTS = Options(batch_size=16, latency_samples=0, limit=40)


@pytest.mark.skipif(importlib.util.find_spec("rapidocr") is None, reason="rapidocr not installed")
def test_rapidocr_reads_real_crops(real_words_dir: Path) -> None:
    report, _ = evaluate_sets(FakePredictor({}), [str(real_words_dir)], peers=[RapidOcrPeer()], opts=OPTS)
    acc = report["sets"][0]["peers"]["rapidocr"]["modes"]["hr"]["accuracy"]
    # the first 40 fixture crops are TextZoom-easy LR crops (rapidocr: 83.5% on the whole easy set, 36-char)
    assert acc > 50.0, acc


@pytest.fixture(scope="module")
def tesseract() -> TesseractPeer:
    if importlib.util.find_spec("pytesseract") is None:
        pytest.skip("pytesseract not installed")
    try:
        return TesseractPeer()
    except PeerUnavailable as err:
        pytest.skip(str(err))


def test_tesseract_reads_real_crops(real_words_dir: Path, tesseract: TesseractPeer) -> None:
    report, _ = evaluate_sets(FakePredictor({}), [str(real_words_dir)], peers=[tesseract],
                              opts=Options(batch_size=16, latency_samples=0, limit=20))
    assert report["sets"][0]["peers"]["tesseract"]["modes"]["hr"]["accuracy"] > 20.0


def test_missing_peers_and_unknown_name(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("rapidocr", "pytesseract") else real(name, *a))
    with pytest.raises(PeerUnavailable, match="rapidocr is not installed"):
        load_peer("rapidocr")
    with pytest.raises(PeerUnavailable, match="pytesseract is not installed"):
        load_peer("tesseract")
    with pytest.raises(ValueError, match="unknown peer 'easyocr'"):
        load_peer("easyocr")


@pytest.mark.skipif(importlib.util.find_spec("pytesseract") is None, reason="pytesseract not installed")
def test_tesseract_binary_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    with pytest.raises(PeerUnavailable, match="tesseract binary is not installed"):
        TesseractPeer()


def test_tesseract_batch_equals_one_call_per_image(real_words_dir: Path, tesseract: TesseractPeer) -> None:
    """One tesseract process per batch must give each image the answer a call of its own gives, in order."""
    from PIL import Image

    peer = tesseract
    lines = (real_words_dir / "labels.tsv").read_text(encoding="utf-8").splitlines()[:24]
    images = [Image.open(real_words_dir / line.split("\t")[0]) for line in lines]
    batched = [d.text for d in peer.predict(images, "hr", batch_size=10)]  # 3 processes, the last one short
    one_by_one = ["".join(w for w in peer._tess.image_to_data(im.convert("RGB"), config=peer.config,
                                                              output_type=peer._tess.Output.DICT)["text"] if str(w).strip())
                  for im in images]
    assert batched == one_by_one
    assert len(set(batched)) > 10  # distinct answers: the pages were not mixed up or dropped


@pytest.fixture(scope="module")
def chinese_lines(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A word set of clean Chinese/mixed express-sheet lines rendered with an installed CJK font."""
    from PIL import Image, ImageDraw, ImageFont

    from lowres_ocr.page.render import font_path

    path = font_path()
    if path is None:
        pytest.skip("no CJK font installed (scripts/bootstrap installs fonts-wqy-zenhei, fonts-noto-cjk, ...)")
    font = ImageFont.truetype(path, 40)
    folder = tmp_path_factory.mktemp("zh") / "zh_lines"
    (folder / "img").mkdir(parents=True)
    lines = ["湖北省襄阳市樊城区", "中通快递", "韵达 739 H181-02 88", "襄阳公司包"]
    for i, text in enumerate(lines):
        width = int(font.getlength(text)) + 24
        img = Image.new("RGB", (width, 56), "white")
        ImageDraw.Draw(img).text((12, 6), text, font=font, fill="black")
        img.save(folder / "img" / f"{i}.png")
    (folder / "labels.tsv").write_text("".join(f"img/{i}.png\t{t}\n" for i, t in enumerate(lines)), encoding="utf-8")
    return folder


def test_peers_read_chinese_lines_under_the_line_protocol(chinese_lines: Path) -> None:
    peers = []
    for name in ("rapidocr", "tesseract-chi_sim"):
        try:
            peers.append(load_peer(name))
        except PeerUnavailable as err:
            print(f"{name} skipped: {err}")
    if not peers:
        pytest.skip("neither rapidocr nor tesseract with chi_sim is installed")
    report, _ = evaluate_sets(FakePredictor({}), [str(chinese_lines)], peers=peers, opts=OPTS)
    entry = report["sets"][0]
    assert entry["protocol"] == "line" and entry["used"] == 4
    for peer in peers:
        cell = entry["peers"][peer.name]["modes"]["hr"]
        assert cell["one_minus_ned"] > 60.0, (peer.name, cell)


def test_tesseract_language_data_missing() -> None:
    if importlib.util.find_spec("pytesseract") is None:
        pytest.skip("pytesseract not installed")
    try:
        TesseractPeer()
    except PeerUnavailable as err:
        pytest.skip(str(err))
    with pytest.raises(PeerUnavailable, match="apt-get install tesseract-ocr-xyz"):
        TesseractPeer("xyz")
