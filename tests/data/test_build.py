from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lmdb
import pytest
from PIL import Image
from typer.testing import CliRunner

from lowres_ocr.cli import app
from lowres_ocr.data.build import BuildOptions, StrictBuildError, build_lmdb
from lowres_ocr.data.lmdb_io import LmdbReader

from .conftest import png_bytes

REPO = Path(__file__).resolve().parents[2]


def _bad_cases(make_folder) -> Path:
    png = png_bytes()
    jpg = png_bytes(fmt="JPEG", colour="gray")
    files = {
        "good1.png": png, "good2.jpg": jpg, "good3.png": png_bytes((40, 20), "black"),
        "truncated.png": png_bytes((300, 100), "red")[:150], "truncated.jpg": jpg[: len(jpg) // 2],
        "garbage.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "empty.png": b"",
        "notes.png": b"this is a text file, not an image\n",
        "emptylabel.png": png, "long.png": png, "accent.png": png, "space.png": png,
    }
    lines = [
        "good1.png\tParcel#1", "good2.jpg\tHELLO", "good3.png\t0123456789",
        "truncated.png\tcut", "truncated.jpg\tcut2", "garbage.png\tjunk", "empty.png\tzero",
        "notes.png\ttext", "missing.png\tgone", "emptylabel.png\t", "long.png\t" + "x" * 26,
        "accent.png\tcafé", "space.png\ttwo words", "just-one-column", b"good1.png\t\xff\xfe",
        "good1.png\tduplicate",
    ]
    return make_folder(files, lines)


EXPECTED = {"wrong_encoding": 1, "malformed_line": 1, "duplicate_path": 1, "missing_path": 1, "non_image": 1,
            "corrupt_image": 4, "empty_label": 1, "too_long": 1, "outside_charset": 2}


def test_bad_cases_keep_exactly_the_good_ones(make_folder, tmp_path):
    src = _bad_cases(make_folder)
    seen = []
    report = build_lmdb([src], tmp_path / "out", on_problem=seen.append)
    assert report.kept == 3 and report.by_reason() == EXPECTED and len(seen) == report.skipped == 13
    r = LmdbReader(tmp_path / "out")
    assert [s.label for s in r] == ["Parcel#1", "HELLO", "0123456789"]
    assert r[1].image == (src / "good2.jpg").read_bytes()  # stored as read from disk
    text = "\n".join(map(str, report.problems))
    for needle in ("labels.tsv:4 (truncated.png)", "labels.tsv:9 (missing.png)", "(notes.png): not an image file",
                   "labels.tsv:15", "already used on line 1", "26 characters > 25", "'é'"):
        assert needle in text, needle


def test_strict_fails_and_writes_nothing(make_folder, tmp_path):
    src = _bad_cases(make_folder)
    with pytest.raises(StrictBuildError, match="13 sample"):
        build_lmdb([src], tmp_path / "out", BuildOptions(strict=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]
    res = CliRunner().invoke(app, ["data", "build-lmdb", str(src), "--out", str(tmp_path / "o2"), "--strict"])
    assert res.exit_code == 1 and not (tmp_path / "o2").exists()
    assert "corrupt or truncated image" in res.output and "--strict" in res.output


def test_filters_can_be_relaxed(make_folder, tmp_path):
    src = _bad_cases(make_folder)
    report = build_lmdb([src], tmp_path / "out", BuildOptions(charset=None, max_length=0))
    assert report.kept == 6 and "outside_charset" not in report.by_reason()
    assert sorted(s.label for s in LmdbReader(tmp_path / "out"))[-1] == "x" * 26


def test_real_words_folder_gives_aster_lmdb_with_line_count(real_words_dir, tmp_path):
    lines = (real_words_dir / "labels.tsv").read_text(encoding="utf-8").splitlines()
    res = CliRunner().invoke(app, ["data", "build-lmdb", str(real_words_dir), "--out", str(tmp_path / "w")])
    assert res.exit_code == 0, res.output
    env = lmdb.open(str(tmp_path / "w"), readonly=True, lock=False)
    with env.begin() as txn:
        assert int(txn.get(b"num-samples")) == len(lines)
        path, label = lines[-1].split("\t")
        assert txn.get(b"label-%09d" % len(lines)).decode() == label
        assert txn.get(b"image-%09d" % len(lines)) == (real_words_dir / path).read_bytes()
    env.close()
    res = CliRunner().invoke(app, ["data", "inspect", str(tmp_path / "w")])
    assert res.exit_code == 0 and f"{len(lines)} samples" in res.output and "ASTER" in res.output


def test_pulled_real_set_count_equals_line_count(tmp_path):
    """A real set as the project carries it (DVC); a fresh clone pulls it first, as a user would."""
    src = REPO / "data" / "svtp_test"
    if not (src / "labels.tsv").is_file():
        from lowres_ocr.data.remote import pull

        pull(REPO, ["data/svtp_test"])
    n = len((src / "labels.tsv").read_text(encoding="utf-8").splitlines())
    assert n == 645
    report = build_lmdb([src], tmp_path / "iiit")
    assert report.kept == n == len(LmdbReader(tmp_path / "iiit")) and report.skipped == 0


def test_pairs_with_resize(real_pairs_dir, tmp_path):
    report = build_lmdb([real_pairs_dir], tmp_path / "p", BuildOptions(resize=True))
    r = LmdbReader(tmp_path / "p")
    assert r.kind == "pairs" and len(r) == report.kept == 210
    s = r[5]
    assert Image.open(io.BytesIO(s.hr)).size == (128, 32) and Image.open(io.BytesIO(s.lr)).size == (64, 16)


def test_mixed_kinds_and_existing_destination(real_words_dir, real_pairs_dir, tmp_path):
    with pytest.raises(ValueError, match="mix word crops and LR/HR pairs"):
        build_lmdb([real_words_dir, real_pairs_dir], tmp_path / "m")
    build_lmdb([real_words_dir], tmp_path / "w")
    res = CliRunner().invoke(app, ["data", "build-lmdb", str(real_words_dir), "--out", str(tmp_path / "w")])
    assert res.exit_code == 2 and "already exists" in res.output
    two = build_lmdb([real_words_dir, real_words_dir], tmp_path / "w", BuildOptions(overwrite=True))
    assert two.kept == 420  # several sources are concatenated


def test_killed_build_leaves_no_lmdb_at_destination(make_folder, tmp_path):
    n = 4000
    src = make_folder({f"i/{k}.png": png_bytes((128, 32), (k % 250, 0, 0)) for k in range(n)},
                      [f"i/{k}.png\tw{k}" for k in range(n)], "big")
    dst = tmp_path / "out"
    code = f"from lowres_ocr.data.build import build_lmdb; build_lmdb([{str(src)!r}], {str(dst)!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.partial-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not dst.exists()
    report = build_lmdb([src], dst)  # the next build cleans the dead writer's leftovers
    assert report.kept == n and not list(tmp_path.glob(".out.partial-*"))
