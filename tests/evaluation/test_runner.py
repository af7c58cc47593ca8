"""The runner on a fake predictor: exact accuracies, bad input accounting, pairs, peers, speed fields."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from lowres_ocr.data.lmdb_io import Sample, write_lmdb
from lowres_ocr.evaluation.metrics import PSNR_CAP
from lowres_ocr.evaluation.runner import Options, evaluate_sets
from lowres_ocr.data.reader import SetError, load_set, parse_spec

from .conftest import WORDS, FakePredictor, color

OPTS = Options(batch_size=4, latency_samples=3, gallery=2, failures=2)


def test_words_accuracy_and_bad_input(fake: FakePredictor, words_dir: Path, tmp_path: Path) -> None:
    report, art = evaluate_sets(fake, [str(words_dir)], opts=OPTS, predictions_dir=tmp_path / "pred")
    s = report["sets"][0]
    assert s["kind"] == "words" and s["used"] == 6
    # right under the 36-char protocol: PARKING, Salutes, cap GIRO, 42 (door→dour and Fox→"" wrong)
    head = s["model"]["modes"]["hr"]
    assert s["model"]["headline_mode"] == "hr"
    assert head["correct"] == 4 and head["accuracy"] == pytest.approx(400 / 6)
    # case-sensitive: only "42" (capgiro vs cap GIRO differs in case)
    assert head["accuracy_cs"] == pytest.approx(100 / 6)
    # bad input: counted and listed by name, never fatal
    assert s["unreadable"] == 2
    errors = " ".join(x["where"] + " " + x["error"] for x in s["unreadable_samples"])
    assert "corrupt.png" in errors and "missing.png" in errors
    assert s["filtered"] == {"empty_label": 1, "too_long": 1}
    assert [x["reason"] for x in s["skipped_lines"]] == ["malformed_line"]
    assert s["total"] == 11
    # speed fields measured
    assert s["model"]["speed"]["latency_samples"] == 3 and s["model"]["speed"]["crops_per_s"] > 0
    # batches respected (4 + 2) and per-length breakdown present
    assert ("hr", 4) in fake.calls and ("hr", 2) in fake.calls
    assert s["model"]["by_length"]["7"] == [3, 3]  # parking, salutes, capgiro
    assert report["average"]["accuracy"] == pytest.approx(400 / 6)
    assert len(art.gallery[s["name"]]) == 2 and len(art.failures[s["name"]]) == 2
    assert (tmp_path / "pred" / "words.tsv").read_text().count("\n") == 7


def test_labels_variant(fake: FakePredictor, words_dir: Path) -> None:
    spec = parse_spec(f"{words_dir}:labels_cs.tsv")
    assert spec.labels == "labels_cs.tsv" and spec.name == "words:labels_cs"
    report, _ = evaluate_sets(fake, [f"{words_dir}:labels_cs.tsv"], opts=OPTS)
    s = report["sets"][0]
    assert s["name"] == "words:labels_cs" and s["labels_file"] == "labels_cs.tsv" and s["used"] == 6
    # lower-cased labels: "parking" and "capgiro" (after dropping the space) now match case-sensitively
    assert s["model"]["modes"]["hr"]["accuracy_cs"] == pytest.approx(300 / 6)


def test_pairs_modes_and_image_quality(fake: FakePredictor, pairs_dir: Path) -> None:
    report, art = evaluate_sets(fake, [str(pairs_dir)], opts=OPTS)
    s = report["sets"][0]
    assert s["kind"] == "pairs" and set(s["model"]["modes"]) == {"bicubic", "sr", "hr"}
    assert s["model"]["headline_mode"] == "sr"
    q = s["image_quality"]
    # the fake SR is the stored LR resized to 32×128, which equals HR here; bicubic went through 16×64
    assert q["sr"]["psnr"] == PSNR_CAP and q["sr"]["ssim"] == pytest.approx(1.0)
    assert q["bicubic"]["psnr"] < 40 and q["bicubic"]["ssim"] < 0.99
    assert set(art.gallery[s["name"]][0]["images"]) == {"LR (bicubic)", "SR", "HR"}


def test_weighted_average_over_sets(fake: FakePredictor, words_dir: Path, pairs_dir: Path) -> None:
    report, _ = evaluate_sets(fake, [str(words_dir), str(pairs_dir)], opts=OPTS)
    assert report["average"]["n"] == 12
    assert report["average"]["accuracy"] == pytest.approx(800 / 12)
    assert report["average"]["modes"]["hr"]["sets"] == 2


def test_peer_side_by_side(fake: FakePredictor, pairs_dir: Path) -> None:
    peer = FakePredictor({color(0): "PARKING"}, name="peer")
    peer.modes = ("lr", "hr")
    report, _ = evaluate_sets(fake, [str(pairs_dir)], peers=[peer], opts=OPTS)
    p = report["sets"][0]["peers"]["peer"]
    assert p["headline_mode"] == "lr" and set(p["modes"]) == {"lr", "hr"}
    assert p["modes"]["lr"]["correct"] == 1
    assert report["peers_average"]["peer"]["accuracy"] == pytest.approx(100 / 6)


def test_lmdb_sets(fake: FakePredictor, pairs_dir: Path, tmp_path: Path) -> None:
    words = [Sample(label, image=(pairs_dir / "hr" / f"{i:09d}.png").read_bytes()) for i, (label, _) in enumerate(WORDS)]
    words.append(Sample("BAD", image=b"garbage"))
    write_lmdb(tmp_path / "w.lmdb", "words", words)
    pairs = [Sample(label, hr=(pairs_dir / "hr" / f"{i:09d}.png").read_bytes(), lr=(pairs_dir / "lr" / f"{i:09d}.png").read_bytes())
             for i, (label, _) in enumerate(WORDS)]
    write_lmdb(tmp_path / "p.lmdb", "pairs", pairs)
    report, _ = evaluate_sets(fake, [str(tmp_path / "w.lmdb"), str(tmp_path / "p.lmdb")], opts=OPTS)
    w, p = report["sets"]
    assert (w["kind"], p["kind"]) == ("words", "pairs")
    assert w["unreadable"] == 1 and "index 7" in w["unreadable_samples"][0]["where"]
    assert w["model"]["modes"]["hr"]["correct"] == 4 and p["model"]["modes"]["sr"]["correct"] == 4


def test_bad_set_arguments(tmp_path: Path) -> None:
    with pytest.raises(SetError, match=r"nope: no such file"):
        load_set(str(tmp_path / "nope"))
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(SetError, match=r"empty_dir.*labels.tsv not found.*nor an LMDB"):
        load_set(str(tmp_path / "empty_dir"))
    (tmp_path / "file.bin").write_bytes(b"not an lmdb at all" * 100)
    with pytest.raises(SetError, match=r"file.bin: not a readable LMDB"):
        load_set(str(tmp_path / "file.bin"))
    with pytest.raises(SetError, match=r"labels_xx.tsv not found"):
        load_set(f"{tmp_path / 'empty_dir'}:labels_xx.tsv")
    for err in ("nope", "empty_dir"):
        try:
            load_set(str(tmp_path / err))
        except SetError as e:
            assert "\n" not in str(e)


def test_modes_filter(fake: FakePredictor, words_dir: Path, pairs_dir: Path) -> None:
    peer = FakePredictor({}, name="peer")
    peer.modes = ("lr", "hr")
    opts = Options(batch_size=4, latency_samples=0, modes=("sr", "lr"))
    report, _ = evaluate_sets(fake, [str(words_dir), str(pairs_dir)], peers=[peer], opts=opts)
    words, pairs = report["sets"]
    assert list(pairs["model"]["modes"]) == ["sr"] and list(pairs["peers"]["peer"]["modes"]) == ["lr"]
    # word sets have no sr/lr run for these predictors: each keeps its headline mode
    assert list(words["model"]["modes"]) == ["hr"] and words["model"]["headline_mode"] == "hr"
    assert report["options"]["modes"] == ["sr", "lr"]


def test_bicubic_quality_measures_the_bicubic_accuracy_input(tiny_checkpoint: Path, pairs_dir: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The image behind the "bicubic" PSNR/SSIM and the gallery thumbnail is the one the bicubic mode recognizes."""
    import numpy as np

    from lowres_ocr.core.geometry import HR_SIZE, hr_input
    from lowres_ocr.core.images import to_uint8_image
    from lowres_ocr.evaluation.metrics import psnr, ssim
    from lowres_ocr.evaluation.predictors import TorchPredictor

    model = TorchPredictor(tiny_checkpoint)
    fed: list[np.ndarray] = []
    recognize = model.recognizer.model.recognize

    def spy(x):  # the 32×128 batch the recognizer reads
        fed.append(x.detach().float().cpu().numpy())
        return recognize(x)

    monkeypatch.setattr(model.recognizer.model, "recognize", spy)
    opts = Options(batch_size=4, latency_samples=0, gallery=len(WORDS), failures=0, modes=("bicubic",))
    report, art = evaluate_sets(model, [str(pairs_dir)], opts=opts)
    s = report["sets"][0]
    assert list(s["model"]["modes"]) == ["bicubic"]
    bicubic = np.concatenate(fed)
    assert bicubic.shape == (len(WORDS), 3, HR_SIZE[1], HR_SIZE[0])
    hr = [hr_input(Image.open(pairs_dir / "hr" / f"{i:09d}.png")) for i in range(len(WORDS))]
    q = s["image_quality"]["bicubic"]
    assert q["psnr"] == pytest.approx(float(np.mean([psnr(b, h) for b, h in zip(bicubic, hr)])), rel=1e-12, abs=0)
    assert q["ssim"] == pytest.approx(float(np.mean([ssim(b, h) for b, h in zip(bicubic, hr)])), rel=1e-12, abs=0)
    for row, b in zip(art.gallery[s["name"]], bicubic):
        assert np.array_equal(np.asarray(row["images"]["LR (bicubic)"]), np.asarray(to_uint8_image(b)))


class SizeRecorder(FakePredictor):
    """A fake that also records the size of every image it is given, per mode."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.sizes: dict[str, set[tuple[int, int]]] = {}

    def predict(self, images, mode, batch_size):  # type: ignore[no-untyped-def]
        self.sizes.setdefault(mode, set()).update(im.size for im in images)
        return super().predict(images, mode, batch_size)


def test_protocol_row_squeezes_the_lr_image_for_model_and_peers(pairs_dir: Path, words_dir: Path) -> None:
    from lowres_ocr.evaluation.report import to_markdown
    from lowres_ocr.evaluation.runner import PROTOCOL_MODE

    answers = {color(i): ans for i, (_, ans) in enumerate(WORDS)}
    model, peer = SizeRecorder(answers), SizeRecorder(answers, name="peer")
    peer.modes = ("lr", "hr")
    opts = Options(batch_size=4, latency_samples=0, gallery=1, failures=1, protocol_row=True)
    report, _ = evaluate_sets(model, [str(pairs_dir), str(words_dir)], peers=[peer], opts=opts)
    pairs, words = report["sets"]
    assert pairs["model"]["headline_mode"] == "sr" and PROTOCOL_MODE in pairs["model"]["modes"]
    assert PROTOCOL_MODE in pairs["peers"]["peer"]["modes"] and pairs["peers"]["peer"]["headline_mode"] == "lr"
    assert PROTOCOL_MODE not in words["model"]["modes"]
    # the squeezed images went through each one's own LR path; the stored LR crops (128×32 here) stayed as they are
    assert (64, 16) in model.sizes["sr"] and (64, 16) in peer.sizes["lr"]
    assert (128, 32) in model.sizes["sr"]
    assert pairs["model"]["modes"][PROTOCOL_MODE]["n"] == pairs["used"] == 6
    md = to_markdown(report)
    assert "## TextZoom protocol row" in md and "| pairs | 6 |" in md
    # without the option nothing is squeezed
    plain, _ = evaluate_sets(SizeRecorder(answers), [str(pairs_dir)], opts=OPTS)
    assert PROTOCOL_MODE not in plain["sets"][0]["model"]["modes"] and "## TextZoom protocol row" not in to_markdown(plain)


def test_every_mode_section_lists_the_peers_hr_side(fake: FakePredictor, pairs_dir: Path) -> None:
    from lowres_ocr.evaluation.report import to_markdown

    peer = FakePredictor({color(0): "PARKING"}, name="peer")
    peer.modes = ("lr", "hr")
    report, _ = evaluate_sets(fake, [str(pairs_dir)], peers=[peer], opts=OPTS)
    md = to_markdown(report)
    section = md[md.index("## Every mode"):]
    # the peer reads 1 of 6 on both images (its answer depends on the colour only); its hr cell is shown
    assert "| pairs | latin36 | peer | – | – | 16.7 / " in section
    assert section.count("| pairs | latin36 | ") == 2
