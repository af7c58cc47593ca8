"""DVC + S3 through a local moto server (bucket seeded from the bundle's archives, or by dvc push), and a fresh
clone that pulls the datasets offline from the bundled remote."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lowres_ocr.data.bundle import write_bundle
from lowres_ocr.data.remote import DvcError, dvc_env, pull, remote_url, run_dvc, s3_configured

from .conftest import file_md5s, local_s3, seed_bucket_from_bundle, toy_dvc_repo

REPO = Path(__file__).resolve().parents[2]


def _use_endpoint(monkeypatch, endpoint: str) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.mark.integration
def test_s3_pull_from_bucket_seeded_with_the_bundle(tmp_path, clean_aws, monkeypatch):
    repo = toy_dvc_repo(tmp_path / "toy", {"a": 3, "b": 2})
    originals = file_md5s(repo / "data")
    write_bundle(repo, [repo / ".dvc" / "cache"])
    shutil.rmtree(repo / "data")
    shutil.rmtree(repo / ".dvc" / "cache")
    with local_s3() as endpoint:
        assert seed_bucket_from_bundle(endpoint, remote_url(repo), repo / "dvc-bundle") == 1 + 4 + 3
        _use_endpoint(monkeypatch, endpoint)
        assert s3_configured(repo)
        shared_site = Path(os.environ["DVC_SITE_CACHE_DIR"])  # stands for /var/tmp/dvc, whose index can go stale
        shutil.rmtree(shared_site, ignore_errors=True)
        result = pull(repo, ["data/b"], timeout=120)  # credentials + endpoint in the environment: the S3 remote
        assert result.source == "s3" and result.unpacked is None
        assert not (repo / "data" / "a").exists() and not (repo / ".dvc" / "tmp" / "bundled-remote").exists()
        pull(repo, timeout=120)
        assert not shared_site.exists()  # pull ran dvc on a private, fresh site cache
    assert file_md5s(repo / "data") == originals


@pytest.mark.integration
def test_push_pull_round_trip_through_local_s3(tmp_path, clean_aws, monkeypatch):
    import boto3

    repo = toy_dvc_repo(tmp_path / "toy")
    originals = file_md5s(repo / "data")
    with local_s3() as endpoint:
        _use_endpoint(monkeypatch, endpoint)
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
        result = pull(repo, timeout=120)  # credentials + endpoint in the environment: the configured remote
        assert result.source == "s3"
    assert file_md5s(repo / "data") == originals


@pytest.mark.integration
def test_pull_from_dead_endpoint_fails_fast(tmp_path, clean_aws, monkeypatch):
    repo = toy_dvc_repo(tmp_path / "toy")
    with local_s3() as endpoint:
        pass  # the server is stopped again: nothing listens on that port now
    _use_endpoint(monkeypatch, endpoint)
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


def _fresh_clone_pull(tmp_path: Path, targets: list[str]) -> Path:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, capture_output=True, timeout=300)
    env = dvc_env({"PYTHONPATH": str(clone)})
    proc = subprocess.run([sys.executable, "-m", "lowres_ocr.cli", "data", "pull", *targets], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "via bundled" in proc.stdout
    assert not (clone / ".dvc" / "config.local").exists()  # the bundled remote's url is fixed in .dvc/config
    return clone


def _committed(path: str) -> bool:
    r = subprocess.run(["git", "ls-files", "--error-unmatch", path], cwd=REPO, capture_output=True)
    return r.returncode == 0


@pytest.mark.integration
@pytest.mark.skipif(not _committed("dvc-bundle/manifest.json"), reason="dvc-bundle/ not committed")
def test_fresh_clone_pulls_a_set_offline(tmp_path, clean_aws):
    clone = _fresh_clone_pull(tmp_path, ["data/svtp_test"])
    lines = (clone / "data" / "svtp_test" / "labels.tsv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 645
    for line in lines:
        assert (clone / "data" / "svtp_test" / line.split("\t")[0]).is_file()
    unpacked = clone / ".dvc" / "tmp" / "bundled-remote" / "bundle-unpacked.json"
    assert sorted(json.loads(unpacked.read_text())) == ["_listings.tar", "svtp_test.tar"]
    assert subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout == ""


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.skipif(not _committed("dvc-bundle/manifest.json"), reason="dvc-bundle/ not committed")
def test_fresh_clone_pulls_every_set_offline(tmp_path, clean_aws):
    import yaml

    clone = _fresh_clone_pull(tmp_path, [])
    out = yaml.safe_load((clone / "data.dvc").read_text())["outs"][0]
    files = [p for p in (clone / "data").rglob("*") if p.is_file() and p.name != "README.md"]
    assert len(files) == out["nfiles"] and sum(p.stat().st_size for p in files) == out["size"]
