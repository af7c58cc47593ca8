"""Fixtures for the data-stage tests: tiny dataset folders and DVC repositories written on the fly, a moto S3 server."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from PIL import Image


def png_bytes(size: tuple[int, int] = (128, 32), colour: str = "white", fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture()
def make_folder(tmp_path):
    """make_folder(files={rel: bytes}, lines=[str | bytes]) -> a dataset folder."""

    def _make(files: dict[str, bytes], lines: list[str | bytes], name: str = "set") -> Path:
        root = tmp_path / name
        for rel, data in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        root.mkdir(exist_ok=True)
        raw = b"".join((ln if isinstance(ln, bytes) else ln.encode("utf-8")) + b"\n" for ln in lines)
        (root / "labels.tsv").write_bytes(raw)
        return root

    return _make


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=cwd, check=True,
                   capture_output=True)


def toy_dvc_repo(root: Path, sets: dict[str, int] | None = None) -> Path:
    """A git + DVC repository with ``data/<set>/`` folders of small PNGs (+ labels.tsv) tracked by ``data.dvc``.

    Remotes as in the project: ``storage`` = s3://toy-bucket/dvcstore (default), ``bundled`` = tmp/bundled-remote.
    """
    from lowres_ocr.data.remote import run_dvc

    root.mkdir()
    git(root, "init", "-q")
    run_dvc(["init", "-q"], root)
    colours = ("red", "green", "blue", "white", "black", "yellow")
    for k, (name, n) in enumerate((sets or {"toy": 3}).items()):
        folder = root / "data" / name
        folder.mkdir(parents=True)
        for i in range(n):
            (folder / f"{i}.png").write_bytes(png_bytes((16 + k, 8), colour=colours[i % len(colours)]))
        (folder / "labels.tsv").write_text("".join(f"{i}.png\t{name}{i}\n" for i in range(n)), encoding="utf-8")
    run_dvc(["add", "-q", "data"], root)
    (root / ".dvc" / "config").write_text(
        "[core]\n    analytics = false\n    remote = storage\n['remote \"storage\"']\n    url = s3://toy-bucket/dvcstore\n"
        "['remote \"bundled\"']\n    url = tmp/bundled-remote\n", encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "toy")
    return root


def file_md5s(folder: Path) -> dict[Path, str]:
    return {p.relative_to(folder): hashlib.md5(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


@contextmanager
def local_s3() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (a thread of this process) for the duration of the block; yields its URL.

    moto keeps its state in this process, so the block ends by resetting it (the next server starts empty).
    """
    import logging
    import socket
    import urllib.request

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=10).close()
        yield endpoint
    finally:  # moto keeps its buckets in this process: empty them so the next server starts blank
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).close()
        server.stop()


def seed_bucket_from_bundle(endpoint: str, url: str, bundle: Path) -> int:
    """Create the bucket of the s3:// ``url`` and upload every object of the bundle's archives under its prefix."""
    import boto3

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    s3.create_bucket(Bucket=bucket)
    count = 0
    for archive in sorted(bundle.glob("*.tar")):
        with tarfile.open(archive, "r:") as tar:
            for member in tar:
                body = tar.extractfile(member)
                assert body is not None
                s3.put_object(Bucket=bucket, Key="/".join(p for p in (prefix.strip("/"), member.name) if p),
                              Body=body.read())
                count += 1
    return count


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
