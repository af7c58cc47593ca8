from __future__ import annotations

import io

import lmdb
import pytest
from PIL import Image

from lowres_ocr.data.lmdb_io import LmdbError, LmdbReader, LmdbWriter, Sample, remove_stale_partials, write_lmdb

from .conftest import png_bytes


def test_words_round_trip_and_plain_lmdb_pil(tmp_path):
    imgs = [png_bytes(colour=c) for c in ("red", "green", "blue")]
    write_lmdb(tmp_path / "w", "words", [Sample(f"w{i}", image=b) for i, b in enumerate(imgs)])
    r = LmdbReader(tmp_path / "w")
    assert (len(r), r.kind) == (3, "words")
    assert [s.label for s in r] == ["w0", "w1", "w2"]
    assert r[1].image == imgs[1] and r[1].hr is None and r[-1].label == "w2"
    assert r.labels() == ["w0", "w1", "w2"]
    # documented keys only, with plain lmdb + PIL
    r.close()
    env = lmdb.open(str(tmp_path / "w"), readonly=True, lock=False)
    with env.begin() as txn:
        assert txn.get(b"num-samples") == b"3"
        assert txn.get(b"label-000000001") == b"w0"
        assert Image.open(io.BytesIO(txn.get(b"image-000000003"))).getpixel((0, 0)) == (0, 0, 255)
        assert txn.get(b"image-000000000") is None and txn.get(b"image-000000004") is None
    env.close()


def test_pairs_round_trip(tmp_path):
    hr, lr = png_bytes((128, 32)), png_bytes((64, 16))
    write_lmdb(tmp_path / "p", "pairs", [Sample("Ab1", hr=hr, lr=lr)])
    r = LmdbReader(tmp_path / "p")
    assert (len(r), r.kind) == (1, "pairs")
    s = r[0]
    assert (s.label, s.hr, s.lr, s.image) == ("Ab1", hr, lr, None)
    r.close()
    env = lmdb.open(str(tmp_path / "p"), readonly=True, lock=False)
    with env.begin() as txn:
        assert Image.open(io.BytesIO(txn.get(b"image_lr-000000001"))).size == (64, 16)
        assert Image.open(io.BytesIO(txn.get(b"image_hr-000000001"))).size == (128, 32)


def test_index_errors_and_bad_lmdbs(tmp_path):
    write_lmdb(tmp_path / "w", "words", [Sample("a", image=png_bytes())])
    r = LmdbReader(tmp_path / "w")
    with pytest.raises(IndexError):
        r[1]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LmdbReader(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LmdbError, match="no data.mdb"):
        LmdbReader(tmp_path / "empty")
    env = lmdb.open(str(tmp_path / "raw"))
    with env.begin(write=True) as txn:
        txn.put(b"label-000000001", b"x")
    env.close()
    with pytest.raises(LmdbError, match="num-samples"):
        LmdbReader(tmp_path / "raw")
    env = lmdb.open(str(tmp_path / "raw"))
    with env.begin(write=True) as txn:
        txn.put(b"num-samples", b"2")
        txn.put(b"image-000000001", png_bytes())
    env.close()
    r = LmdbReader(tmp_path / "raw")
    with pytest.raises(LmdbError, match="label-000000002"):
        r[1]


def test_writer_exception_leaves_nothing_and_keeps_old(tmp_path):
    dst = tmp_path / "out"
    write_lmdb(dst, "words", [Sample("old", image=png_bytes())])
    with pytest.raises(KeyboardInterrupt):
        with LmdbWriter(dst, "words", overwrite=True) as w:
            w.add("new", image=png_bytes())
            raise KeyboardInterrupt
    assert LmdbReader(dst)[0].label == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no partial directory left
    with pytest.raises(FileExistsError):
        LmdbWriter(dst, "words")


def test_writer_grows_map_and_rejects_wrong_kind(tmp_path):
    big = bytes(300_000)
    with LmdbWriter(tmp_path / "g", "words", map_size=1 << 20, commit_every=5) as w:
        for i in range(12):
            w.add(str(i), image=big)
    r = LmdbReader(tmp_path / "g")
    assert len(r) == 12 and r[11].image == big
    with pytest.raises(ValueError, match="pairs LMDB takes hr= and lr="):
        with LmdbWriter(tmp_path / "x", "pairs") as w:
            w.add("a", image=big)
    assert not (tmp_path / "x").exists()


def test_stale_partial_of_dead_writer_is_removed(tmp_path):
    stale = tmp_path / ".out.partial-999999999-abc"  # no such pid
    stale.mkdir()
    assert remove_stale_partials(tmp_path / "out") == [stale]
    assert not stale.exists()


def test_two_readers_of_one_path_in_one_process(tmp_path):
    write_lmdb(tmp_path / "w", "words", [Sample("a", image=png_bytes())])
    a, b = LmdbReader(tmp_path / "w"), LmdbReader(tmp_path / "w")
    a.close()
    assert b[0].label == "a"
    b.close()


def test_rebuild_while_a_reader_is_open(tmp_path):
    write_lmdb(tmp_path / "w", "words", [Sample("old", image=png_bytes())])
    old = LmdbReader(tmp_path / "w")
    write_lmdb(tmp_path / "w", "words", [Sample("new", image=png_bytes()), Sample("n2", image=png_bytes())], overwrite=True)
    new = LmdbReader(tmp_path / "w")
    assert (len(old), old[0].label, len(new), new[0].label) == (1, "old", 2, "new")
    old.close()
    assert new[1].label == "n2"
