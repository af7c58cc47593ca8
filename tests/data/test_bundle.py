"""The bundled DVC remote: deterministic per-set archives, checked unpacking, offline `dvc pull -r bundled`."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lowres_ocr.cli import app
from lowres_ocr.data.bundle import BUNDLE_DIR, MANIFEST, BundleError, load_manifest, unpack, write_bundle
from lowres_ocr.data.remote import needed_groups, pull

from .conftest import file_md5s, git, toy_dvc_repo

REPO = Path(__file__).resolve().parents[2]
SETS = {"a": 3, "b": 2}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A toy repository (sets a, b) with its bundle committed; tests work on clones of it."""
    root = toy_dvc_repo(tmp_path_factory.mktemp("tpl") / "repo", SETS)
    write_bundle(root, [root / ".dvc" / "cache"])
    git(root, "add", BUNDLE_DIR)
    git(root, "commit", "-q", "-m", "bundle")
    return root


@pytest.fixture()
def clone(template, tmp_path) -> Path:
    """A fresh clone of the template: no DVC cache, no data."""
    dst = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(template), str(dst)], check=True, capture_output=True)
    return dst


def test_archives_are_deterministic(template, tmp_path):
    other = tmp_path / "objects"
    shutil.copytree(template / ".dvc" / "cache", other)
    for p in other.rglob("*"):  # other times and modes: the archives must not carry them
        os.utime(p, (1_700_000_000, 1_700_000_000))
        if p.is_file():
            p.chmod(0o600)
    report = write_bundle(template, [other], tmp_path / "again")
    committed = template / BUNDLE_DIR
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == sorted(p.name for p in committed.iterdir())
    for p in committed.iterdir():
        assert (tmp_path / "again" / p.name).read_bytes() == p.read_bytes(), p.name
    assert set(report.archives) == {"_listings.tar", "a.tar", "b.tar"}
    with tarfile.open(committed / "a.tar") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members) and len(members) == 4  # 3 PNGs + labels
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {(0, 0, 0, "", "", 0o644)}
    assert write_bundle(template, [other], tmp_path / "again").written == []  # unchanged: nothing rewritten


def test_manifest_describes_the_archives(template):
    manifest = load_manifest(template / BUNDLE_DIR)
    md5 = yaml.safe_load((template / "data.dvc").read_text())["outs"][0]["md5"]
    assert manifest["outputs"] == {"data.dvc:data": md5}
    assert {n: e["objects"] for n, e in manifest["archives"].items()} == {"_listings.tar": 1, "a.tar": 4, "b.tar": 3}


def test_partial_pull_unpacks_only_the_needed_archive(template, clone, clean_aws):
    r = pull(clone, ["data/a"], source="bundled", timeout=120)
    assert r.source == "bundled" and r.unpacked is not None
    assert r.unpacked.archives == r.unpacked.extracted == ["_listings.tar", "a.tar"]
    assert r.unpacked.remote == clone / ".dvc" / "tmp" / "bundled-remote"
    assert len(list((r.unpacked.remote / "files" / "md5").rglob("*"))) - len(list(
        (r.unpacked.remote / "files" / "md5").glob("*"))) == 5  # 4 objects of a + the listing
    assert file_md5s(clone / "data" / "a") == file_md5s(template / "data" / "a")
    assert not (clone / "data" / "b").exists()
    r = pull(clone, ["data/b"], source="bundled", timeout=120)
    assert r.unpacked is not None and r.unpacked.extracted == ["b.tar"]  # the listing is already there
    assert file_md5s(clone / "data") == file_md5s(template / "data")


def test_offline_pull_uses_no_server(template, clone, clean_aws, monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("the offline pull opened a listening socket")

    moto_loaded = {m for m in sys.modules if m.startswith("moto.")}  # by S3 tests run before, if any
    monkeypatch.setitem(sys.modules, "moto", None)  # any new `import moto...` raises ImportError
    monkeypatch.setattr(socket.socket, "listen", refuse)
    r = pull(clone, timeout=120)  # no S3 settings: auto -> bundled
    assert r.source == "bundled" and r.unpacked is not None and r.unpacked.objects == 1 + 4 + 3
    assert file_md5s(clone / "data") == file_md5s(template / "data")
    assert {m for m in sys.modules if m.startswith("moto.")} == moto_loaded
    assert subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout == ""


def test_corrupt_or_missing_archive_is_named(clone, clean_aws):
    a = clone / BUNDLE_DIR / "a.tar"
    a.write_bytes(a.read_bytes()[:-5000])  # truncated
    with pytest.raises(BundleError, match=r"a\.tar: sha256 .* corrupt or truncated"):
        pull(clone, ["data/a"], source="bundled", timeout=120)
    assert not (clone / "data" / "a").exists()
    (clone / BUNDLE_DIR / "b.tar").unlink()
    with pytest.raises(BundleError, match=r"b\.tar is missing"):
        pull(clone, ["data/b"], source="bundled", timeout=120)


def test_cli_pull_error_names_the_archive(clone, clean_aws, monkeypatch):
    a = clone / BUNDLE_DIR / "a.tar"
    a.write_bytes(b"\0" * 1024)
    monkeypatch.chdir(clone)
    res = CliRunner().invoke(app, ["data", "pull", "--source", "bundled", "data/a"])
    assert res.exit_code == 1 and "a.tar" in res.output and "sha256" in res.output


def test_bundle_older_than_the_dvc_files(clone, clean_aws):
    doc = yaml.safe_load((clone / "data.dvc").read_text())
    doc["outs"][0]["md5"] = "0" * 32 + ".dir"
    (clone / "data.dvc").write_text(yaml.safe_dump(doc))
    with pytest.raises(BundleError, match="lacks the listing 0{32}.dir of data"):
        pull(clone, source="bundled", timeout=120)


def test_bundle_command_rewrites_nothing_when_unchanged(template, monkeypatch):
    monkeypatch.chdir(template)
    res = CliRunner().invoke(app, ["data", "bundle"])
    assert res.exit_code == 0, res.output
    assert "0 archive(s) written" in res.output and "unchanged" in res.output
    assert subprocess.run(["git", "status", "--porcelain"], cwd=template, capture_output=True, text=True).stdout == ""


def test_unpack_refuses_members_outside_the_layout(tmp_path):
    bundle = tmp_path / "b"
    bundle.mkdir()
    with tarfile.open(bundle / "x.tar", "w") as tar:
        tar.add(__file__, arcname="../evil.py")
    from lowres_ocr.data.bundle import sha256_file

    manifest = {"format": 1, "archives": {"x.tar": {"sha256": sha256_file(bundle / "x.tar"),
                                                    "bytes": (bundle / "x.tar").stat().st_size, "objects": 1}}}
    with pytest.raises(BundleError, match="unexpected member '../evil.py'"):
        unpack(bundle, "x.tar", manifest, tmp_path / "dest")
    assert not (tmp_path / "evil.py").exists()


@pytest.mark.skipif(not (REPO / BUNDLE_DIR / MANIFEST).is_file(), reason="no bundle in this checkout")
def test_real_bundle_matches_data_dvc(tmp_path):
    manifest = load_manifest(REPO / BUNDLE_DIR)
    md5 = yaml.safe_load((REPO / "data.dvc").read_text())["outs"][0]["md5"]
    assert manifest["outputs"] == {"data.dvc:data": md5}
    assert unpack(REPO / BUNDLE_DIR, "_listings.tar", manifest, tmp_path)
    listing = json.loads((tmp_path / "files" / "md5" / md5[:2] / md5[2:]).read_text())
    objects = sum(e["objects"] for n, e in manifest["archives"].items() if n != "_listings.tar")
    assert objects == len({entry["md5"] for entry in listing})  # each object once, however many files share it
    groups = needed_groups(REPO, ["data/svtp_test"], tmp_path)
    assert {g: len(o) for g, o in groups.items()} == {"_listings": 1, "svtp_test": 647}
    assert set(needed_groups(REPO, None, tmp_path)) == {n.removesuffix(".tar") for n in manifest["archives"]}
    assert json.loads((tmp_path / "bundle-unpacked.json").read_text()) == {
        "_listings.tar": manifest["archives"]["_listings.tar"]["sha256"]}
