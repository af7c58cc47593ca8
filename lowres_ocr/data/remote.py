"""``dvc pull`` of the datasets from the S3 remote, on a connected machine or an offline one.

- With S3 settings (credentials or an endpoint in the environment, ``~/.aws``, or ``.dvc/config.local``) this
  is a plain ``dvc pull`` from the configured remote (``s3://lowres-ocr-data/dvcstore`` by default).
- Without any, it starts a local S3 server (moto) on 127.0.0.1, seeds the remote's bucket and prefix from
  the DVC objects the repository ships in ``dvc-store/``, runs the very same ``dvc pull`` against it (the
  endpoint goes through ``AWS_ENDPOINT_URL_S3``, which dvc-s3 honours) and stops the server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

BUNDLED_STORE = "dvc-store"
DEFAULT_REMOTE = "storage"
_S3_ENV = ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_WEB_IDENTITY_TOKEN_FILE",
           "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
_LOCAL_KEYS = ("endpointurl", "access_key_id", "profile", "credentialpath", "configpath")


class DvcError(RuntimeError):
    """A dvc command failed; the message holds its exit code and the end of its output."""


def repo_root(start: str | Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: cwd) that holds ``.dvc/``."""
    here = Path(start or Path.cwd()).resolve()
    for p in (here, *here.parents):
        if (p / ".dvc").is_dir():
            return p
    raise FileNotFoundError(f"no DVC repository (.dvc/) at or above {here}")


def dvc_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for dvc subprocesses: no analytics/update checks, bounded S3 retries, no EC2 probing."""
    env = dict(os.environ)
    env.setdefault("DVC_NO_ANALYTICS", "1")
    env.setdefault("AWS_MAX_ATTEMPTS", "2")
    env.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    env.update(extra or {})
    return env


def run_dvc(args: list[str], root: Path, env: dict[str, str] | None = None, timeout: float = 1800) -> str:
    """Run ``dvc ARGS`` in ``root``; returns its output or raises ``DvcError``."""
    exe = Path(sys.executable).with_name("dvc")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "dvc"]
    try:
        proc = subprocess.run(cmd + args, cwd=root, env=env or dvc_env(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DvcError(f"dvc {' '.join(args)} did not finish within {timeout:.0f} s") from None
    out = (proc.stdout or "") + (proc.stderr or "")
    if proc.returncode != 0:
        raise DvcError(f"dvc {' '.join(args)} exited {proc.returncode}:\n{out[-3000:]}")
    return out


def _remote_section(root: Path, name: str) -> dict[str, str]:
    """Options of remote ``name`` from .dvc/config and .dvc/config.local (local wins)."""
    import configparser

    merged: dict[str, str] = {}
    for f in (root / ".dvc" / "config", root / ".dvc" / "config.local"):
        if f.is_file():
            cp = configparser.ConfigParser()
            cp.read_string(f.read_text(encoding="utf-8"))
            for section in (f"'remote \"{name}\"'", f'remote "{name}"'):
                if cp.has_section(section):
                    merged.update(cp[section])
    return merged


def remote_url(root: Path, name: str = DEFAULT_REMOTE) -> str:
    url = _remote_section(root, name).get("url")
    if not url:
        raise ValueError(f"{root}/.dvc/config has no remote {name!r} with a url")
    return url


def s3_configured(root: Path, name: str = DEFAULT_REMOTE) -> bool:
    """True if something tells boto where/how to reach S3 (so a real bucket is meant)."""
    if any(os.environ.get(k) for k in _S3_ENV):
        return True
    aws = Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE", Path.home() / ".aws" / "credentials"))
    if aws.is_file():
        return True
    section = _remote_section(root, name)
    return any(section.get(k) for k in _LOCAL_KEYS)


def _split_s3(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise ValueError(f"remote url {url!r} is not an s3:// url")
    bucket, _, prefix = url[5:].partition("/")
    return bucket, prefix.strip("/")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_IN_PROCESS: list = []  # the moto S3 backend of a server running in this process (see local_s3)


@contextmanager
def local_s3() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (a thread of this process) for the duration of the block; yields its URL.

    Running it in-process lets ``seed_bucket`` fill it directly through moto's backend (27k objects in about
    a second instead of minutes over HTTP); dvc itself still talks S3 over HTTP to it.
    """
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=10).close()
        _IN_PROCESS.append(_moto_backend())
        yield endpoint
    finally:
        if _IN_PROCESS:
            _IN_PROCESS.pop()
        server.stop()


def _moto_backend() -> Any:
    """moto's in-process S3 backend, or None if this moto version lays it out differently."""
    try:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        return backend if hasattr(backend, "put_object") and hasattr(backend, "create_bucket") else None
    except (ImportError, KeyError, AttributeError):
        return None


def _object_path(store: Path, md5: str) -> Path:
    return store / "files" / "md5" / md5[:2] / md5[2:]


def needed_objects(root: Path, targets: list[str] | None = None, store: Path | None = None) -> list[str]:
    """md5 names (``.dir`` listings included) of the objects a pull of ``targets`` reads."""
    store = store or root / BUNDLED_STORE
    names: list[str] = []
    for dvcfile in sorted(p for p in root.glob("*.dvc") if p.is_file()):
        for out in (yaml.safe_load(dvcfile.read_text(encoding="utf-8")) or {}).get("outs", []):
            out_path, md5 = out["path"], out["md5"]
            wanted = _wanted_prefixes(out_path, targets)
            if wanted is None:
                continue
            names.append(md5)
            if md5.endswith(".dir"):
                listing = json.loads(_object_path(store, md5).read_text(encoding="utf-8"))
                names += [e["md5"] for e in listing if not wanted or any(e["relpath"] == w or e["relpath"].startswith(w + "/") for w in wanted)]
    return sorted(set(names))


def _wanted_prefixes(out_path: str, targets: list[str] | None) -> list[str] | None:
    """None: output not wanted; []: all of it; else the wanted relpaths inside it."""
    if not targets:
        return []
    out = out_path.strip("/")
    prefixes = []
    for t in targets:
        t = os.path.normpath(t).strip("/")
        if t in (out, out + ".dvc"):
            return []
        if t.startswith(out + "/"):
            prefixes.append(t[len(out) + 1:])
    return prefixes or None


def seed_bucket(endpoint: str, url: str, store: Path, objects: list[str], workers: int = 16) -> int:
    """Create the bucket of ``url`` on ``endpoint`` and upload ``objects`` from the bundled store."""
    bucket, prefix = _split_s3(url)
    missing = [o for o in objects if not _object_path(store, o).is_file()]
    if missing:
        raise FileNotFoundError(f"{store}: {len(missing)} object(s) missing from the bundled store, e.g. {missing[0]}")
    keys = {o: "/".join(p for p in (prefix, "files", "md5", o[:2], o[2:]) if p) for o in objects}
    backend = _IN_PROCESS[-1] if _IN_PROCESS else None
    if backend is not None:  # our own in-process server: straight into its store
        backend.create_bucket(bucket, "us-east-1")
        for o, key in keys.items():
            backend.put_object(bucket, key, _object_path(store, o).read_bytes())
        return len(keys)
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bundled",
                      aws_secret_access_key="bundled")
    s3.create_bucket(Bucket=bucket)

    def put(o: str) -> None:
        s3.put_object(Bucket=bucket, Key=keys[o], Body=_object_path(store, o).read_bytes())

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(put, objects))
    return len(keys)


@dataclass
class PullResult:
    source: str  # "s3" (configured remote) or "bundled" (local S3 server seeded from dvc-store/)
    seeded: int
    seconds: float
    output: str


def pull(root: str | Path | None = None, targets: list[str] | None = None, source: str = "auto",
         remote: str = DEFAULT_REMOTE, jobs: int | None = None, timeout: float = 1800) -> PullResult:
    """``dvc pull`` of ``targets`` (default: everything) from ``remote``; see the module docstring.

    dvc runs with a fresh, private site cache (``DVC_SITE_CACHE_DIR``). The shared one under /var/tmp/dvc keeps a
    data index per checkout that can go stale: measured here, after the test suite had run in a fresh clone, a full
    pull of that clone answered "Everything is up to date", fetched nothing, failed its checkout and removed
    all of ``data/`` (its git-tracked README included). A fresh index costs about 3 s on a pull of present sets.
    """
    with tempfile.TemporaryDirectory(prefix="dvc-site-") as site:
        return _pull(root, targets, source, remote, jobs, timeout, {"DVC_SITE_CACHE_DIR": site})


def _pull(root: str | Path | None, targets: list[str] | None, source: str, remote: str, jobs: int | None,
          timeout: float, site_env: dict[str, str]) -> PullResult:
    t0 = time.perf_counter()
    root = repo_root(root)
    if source not in ("auto", "s3", "bundled"):
        raise ValueError(f"source must be auto, s3 or bundled, got {source!r}")
    if source == "auto":
        source = "s3" if s3_configured(root, remote) else "bundled"
    args = ["pull", "-r", remote] + (["-j", str(jobs)] if jobs else []) + list(targets or [])
    if source == "s3":
        out = run_dvc(args, root, env=dvc_env(site_env), timeout=timeout)
        return PullResult("s3", 0, time.perf_counter() - t0, out)
    store = root / BUNDLED_STORE
    if not store.is_dir():
        raise FileNotFoundError(f"{store} not found: this checkout ships no bundled DVC store; configure S3 instead")
    objects = needed_objects(root, targets, store)
    with local_s3() as endpoint:
        seeded = seed_bucket(endpoint, remote_url(root, remote), store, objects)
        env = dvc_env({"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": "bundled",
                       "AWS_SECRET_ACCESS_KEY": "bundled", "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1",
                       **site_env})
        env.pop("AWS_PROFILE", None)
        out = run_dvc(args, root, env=env, timeout=timeout)
    return PullResult("bundled", seeded, time.perf_counter() - t0, out)
