"""DVC + S3: push/pull through a local moto server, and a fresh clone that pulls the datasets offline."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lowres_ocr.data.remote import (DvcError, dvc_env, local_s3, needed_objects, pull, remote_url, run_dvc,
                                    s3_configured)

from .conftest import png_bytes

REPO = Path(__file__).resolve().parents[2]
_AWS_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
             "AWS_SESSION_TOKEN", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE")


@pytest.fixture()
def clean_aws(monkeypatch, tmp_path):
    """No S3 settings from the machine: empty HOME, no AWS_* variables, a private DVC site cache."""
    for k in _AWS_KEYS:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DVC_SITE_CACHE_DIR", str(tmp_path / "dvc-site"))
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=cwd, check=True,
                   capture_output=True)


def _toy_repo(root: Path) -> Path:
    root.mkdir()
    _git(root, "init", "-q")
    run_dvc(["init", "-q"], root)
    run_dvc(["config", "core.analytics", "false"], root)
    data = root / "data" / "toy"
    data.mkdir(parents=True)
    for i in range(3):
        (data / f"{i}.png").write_bytes(png_bytes(colour=("red", "green", "blue")[i]))
    (data / "labels.tsv").write_text("".join(f"{i}.png\tw{i}\n" for i in range(3)), encoding="utf-8")
    run_dvc(["add", "-q", "data"], root)
    run_dvc(["remote", "add", "-d", "storage", "s3://toy-bucket/dvcstore"], root)
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "toy")
    return root


def _md5(p: Path) -> str:
    return hashlib.md5(p.read_bytes()).hexdigest()


@pytest.mark.integration
def test_push_pull_round_trip_through_local_s3(tmp_path, clean_aws, monkeypatch):
    import boto3

    repo = _toy_repo(tmp_path / "toy")
    originals = {p.relative_to(repo): _md5(p) for p in (repo / "data").rglob("*") if p.is_file()}
    with local_s3() as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="toy-bucket")
        out = run_dvc(["push"], repo, timeout=120)
        assert "5 files pushed" in out  # 4 files + the .dir listing
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="toy-bucket")["Contents"]]
        assert len(keys) == 5 and all(k.startswith("dvcstore/files/md5/") for k in keys)
        for k in keys:  # every object read back is the file its md5 name says
            body = s3.get_object(Bucket="toy-bucket", Key=k)["Body"].read()
            assert hashlib.md5(body).hexdigest() == "".join(k.split("/")[-2:]).removesuffix(".dir")
        shutil.rmtree(repo / "data")
        shutil.rmtree(repo / ".dvc" / "cache")
        assert s3_configured(repo)
        shared_site = Path(os.environ["DVC_SITE_CACHE_DIR"])  # stands for /var/tmp/dvc, whose index can go stale
        shutil.rmtree(shared_site, ignore_errors=True)
        result = pull(repo, timeout=120)  # credentials + endpoint in the environment: the configured remote
        assert result.source == "s3" and result.seeded == 0
        assert not shared_site.exists()  # pull ran dvc on a private, fresh site cache
    pulled = {p.relative_to(repo): _md5(p) for p in (repo / "data").rglob("*") if p.is_file()}
    assert pulled == originals


@pytest.mark.integration
def test_pull_from_dead_endpoint_fails_fast(tmp_path, clean_aws, monkeypatch):
    repo = _toy_repo(tmp_path / "toy")
    with local_s3() as endpoint:
        pass  # the server is stopped again: nothing listens on that port now
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(repo / "data")
    with pytest.raises(DvcError, match="exited"):
        pull(repo, timeout=120)


def test_s3_configured_and_remote_url(tmp_path, clean_aws, monkeypatch):
    repo = tmp_path / "r"
    (repo / ".dvc").mkdir(parents=True)
    (repo / ".dvc" / "config").write_text("[core]\n    remote = storage\n['remote \"storage\"']\n"
                                          "    url = s3://b/p\n", encoding="utf-8")
    assert remote_url(repo) == "s3://b/p" and not s3_configured(repo)
    (repo / ".dvc" / "config.local").write_text("['remote \"storage\"']\n    endpointurl = http://x\n", encoding="utf-8")
    assert s3_configured(repo)
    (repo / ".dvc" / "config.local").unlink()
    monkeypatch.setenv("AWS_PROFILE", "prod")
    assert s3_configured(repo)


@pytest.mark.skipif(not (REPO / "dvc-store").is_dir() or not (REPO / "data.dvc").is_file(), reason="no bundled store")
def test_needed_objects_of_one_set():
    every = needed_objects(REPO)
    svtp = needed_objects(REPO, ["data/svtp_test"])
    assert len(svtp) == 648 and set(svtp) < set(every)  # 645 images + 2 labels files + the .dir listing
    assert needed_objects(REPO, ["data"]) == every


def _fresh_clone_pull(tmp_path: Path, targets: list[str]) -> Path:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, capture_output=True, timeout=300)
    env = dvc_env({"PYTHONPATH": str(clone)})
    proc = subprocess.run([sys.executable, "-m", "lowres_ocr.cli", "data", "pull", *targets], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "via bundled" in proc.stdout
    return clone


def _committed(path: str) -> bool:
    r = subprocess.run(["git", "ls-files", "--error-unmatch", path], cwd=REPO, capture_output=True)
    return r.returncode == 0


@pytest.mark.integration
@pytest.mark.skipif(not _committed("data.dvc"), reason="data.dvc not committed")
def test_fresh_clone_pulls_a_set_offline(tmp_path, clean_aws):
    clone = _fresh_clone_pull(tmp_path, ["data/svtp_test"])
    lines = (clone / "data" / "svtp_test" / "labels.tsv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 645
    for line in lines:
        assert (clone / "data" / "svtp_test" / line.split("\t")[0]).is_file()
    assert subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout == ""


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.skipif(not _committed("data.dvc"), reason="data.dvc not committed")
def test_fresh_clone_pulls_every_set_offline(tmp_path, clean_aws):
    import yaml

    clone = _fresh_clone_pull(tmp_path, [])
    out = yaml.safe_load((clone / "data.dvc").read_text())["outs"][0]
    files = [p for p in (clone / "data").rglob("*") if p.is_file() and p.name != "README.md"]
    assert len(files) == out["nfiles"] and sum(p.stat().st_size for p in files) == out["size"]
