"""Data faults: ``lowres-ocr data pull`` killed with SIGKILL half way; a full disk during an LMDB build."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from lowres_ocr.data.build import BuildOptions, build_lmdb
from lowres_ocr.data.lmdb_io import LmdbReader
from lowres_ocr.data.remote import dvc_env

from ..train.test_faults import small_tmpfs  # the one tmpfs helper of the fault tests
from .conftest import file_md5s

REPO = Path(__file__).resolve().parents[2]
SET = "data/svtp_test"


def _committed(path: str) -> bool:
    return subprocess.run(["git", "ls-files", "--error-unmatch", path], cwd=REPO, capture_output=True, check=False).returncode == 0


def _pull() -> list[str]:
    """The pull command of one small set (run in the clone, with the working tree's code on PYTHONPATH)."""
    return [sys.executable, "-m", "lowres_ocr.cli", "data", "pull", SET]


def _unpacking(clone: Path) -> bool:
    """Objects of the set are being extracted, and the set is not yet recorded as unpacked."""
    remote = clone / ".dvc" / "tmp" / "bundled-remote"
    try:
        state = json.loads((remote / "bundle-unpacked.json").read_text())
    except (OSError, ValueError):
        return False
    return "_listings.tar" in state and "svtp_test.tar" not in state and sum(1 for _ in remote.rglob("*")) > 700


def _dvc_pulling(clone: Path) -> bool:
    """dvc pull is under way: objects are arriving in .dvc/cache, or files of the set in data/."""
    cache, folder = clone / ".dvc" / "cache" / "files" / "md5", clone / SET
    return (cache.is_dir() and sum(1 for _ in cache.rglob("*")) >= 100) or (
        folder.is_dir() and sum(1 for _ in folder.iterdir()) >= 20)


def _listed_md5s(clone: Path) -> dict[Path, str]:
    """md5 of every file of the set as DVC's listing (the ``.dir`` object data.dvc names) records it."""
    md5 = yaml.safe_load((clone / "data.dvc").read_text())["outs"][0]["md5"]
    listing = json.loads((clone / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).read_text())
    prefix = Path(SET).name + "/"
    return {Path(e["relpath"][len(prefix):]): e["md5"] for e in listing if e["relpath"].startswith(prefix)}


def _kill_when(proc: subprocess.Popen, ready: Callable[[], bool], deadline: float) -> bool:
    """SIGKILL the pull's whole process group (dvc included) once ``ready()``; False if it finished first."""
    while time.time() < deadline and proc.poll() is None:
        if ready():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
            return True
        time.sleep(0.005)
    return False


@pytest.mark.integration
@pytest.mark.skipif(not _committed("dvc-bundle/manifest.json"), reason="dvc-bundle/ not committed")
@pytest.mark.parametrize("phase", ["unpacking", "dvc_pull"])
def test_pull_killed_half_way_then_pulled_again_is_byte_identical(tmp_path, clean_aws, phase):
    t0 = time.time()
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, capture_output=True, timeout=120)
    env = dvc_env({"PYTHONPATH": str(REPO)})
    ready = {"unpacking": lambda: _unpacking(clone), "dvc_pull": lambda: _dvc_pulling(clone)}[phase]
    proc = subprocess.Popen(_pull(), cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        killed = _kill_when(proc, ready, time.time() + 120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert killed, f"the pull ended before the {phase} phase was seen: {proc.stdout.read().decode()[-2000:]}"
    cache = clone / ".dvc" / "cache" / "files" / "md5"
    partial = (f"{sum(1 for _ in cache.rglob('*')) if cache.is_dir() else 0} entries in .dvc/cache, "
               f"{sum(1 for _ in (clone / SET).iterdir()) if (clone / SET).is_dir() else 0} in {SET}")

    again = subprocess.run(_pull(), cwd=clone, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert file_md5s(clone / SET) == _listed_md5s(clone)
    assert subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=False).stdout == ""
    print(f"killed while {phase} ({partial}); the next pull completed, byte-identical; "
          f"{time.time() - t0:.0f} s")


# -- a full disk during an LMDB build --------------------------------------------------------------------------
def test_lmdb_build_into_a_full_disk_fails_clearly_and_keeps_the_previous(tmp_path, real_words_dir):
    small = tmp_path / "small"
    small.mkdir()
    lines = (real_words_dir / "labels.tsv").read_text(encoding="utf-8").splitlines()
    (small / "labels.tsv").write_text("\n".join(lines[:10]) + "\n", encoding="utf-8")
    for line in lines[:10]:
        (small / line.split("\t")[0]).parent.mkdir(parents=True, exist_ok=True)
        (small / line.split("\t")[0]).write_bytes((real_words_dir / line.split("\t")[0]).read_bytes())
    with small_tmpfs(tmp_path / "disk", "4m") as disk:
        out = disk / "words.lmdb"
        assert build_lmdb([small], out).kept == 10
        before = file_md5s(out)
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        (disk / "filler").write_bytes(b"\0" * (free - 64 * 1024))  # 64 KiB left, the full set needs more
        with pytest.raises(OSError, match=r"(?i)no space left") as info:
            build_lmdb([real_words_dir], out, BuildOptions(overwrite=True))
        assert str(out) in str(info.value)
        assert file_md5s(out) == before
        reader = LmdbReader(out)
        assert len(reader) == 10 and reader[9].label == lines[9].split("\t")[1]
        reader.close()
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "words.lmdb"]  # no partial LMDB left
