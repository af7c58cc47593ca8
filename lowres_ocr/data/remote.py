"""``dvc pull`` of the datasets: from the S3 remote on a connected machine, from the bundled remote offline.

- With S3 settings (credentials or an endpoint in the environment, ``~/.aws``, or ``.dvc/config.local``) this
  is a plain ``dvc pull -r storage`` from the configured bucket (``s3://lowres-ocr-data/dvcstore`` by default).
- Without any, it unpacks the archives of ``dvc-bundle/`` that the targets need (``lowres_ocr.data.bundle``:
  one tar per set, checked against the manifest) into the folder of the DVC remote ``bundled`` and runs
  ``dvc pull -r bundled``: DVC's own pull from a local remote, no server and no socket.

The remote ``bundled`` keeps a fixed url in ``.dvc/config``: ``tmp/bundled-remote``, which DVC resolves against
``.dvc/`` (so ``.dvc/tmp/bundled-remote``, git-ignored). A fixed url means nothing is written to the user's
``.dvc/config.local`` and plain ``dvc pull -r bundled`` works after one ``lowres-ocr data pull`` has unpacked the
archives. The unpacked objects stay there (with a record of which archive sha256 was extracted, so the next pull
skips it); ``rm -rf .dvc/tmp/bundled-remote`` frees the space.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from lowres_ocr.data.bundle import (BUNDLE_DIR, LISTINGS, LOOSE, BundleError, group_of, load_manifest, object_path,
                                    read_listing, tracked_outputs, unpack)

DEFAULT_REMOTE = "storage"
BUNDLED_REMOTE = "bundled"
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




def needed_groups(root: Path, targets: list[str] | None, store: Path) -> dict[str, set[str]]:
    """Archive name (without ``.tar``) -> the objects a pull of ``targets`` reads from it.

    ``store`` must already hold the ``.dir`` listings (``_listings.tar`` unpacked).
    """
    groups: dict[str, set[str]] = {}
    for _, out_path, md5 in tracked_outputs(root):
        wanted = _wanted_prefixes(out_path, targets)
        if wanted is None:
            continue
        if not md5.endswith(".dir"):
            groups.setdefault(LOOSE, set()).add(md5)
            continue
        groups.setdefault(LISTINGS, set()).add(md5)
        for e in read_listing(store, md5):
            rel = e["relpath"]
            if not wanted or any(rel == w or rel.startswith(w + "/") for w in wanted):
                groups.setdefault(group_of(rel), set()).add(e["md5"])
    return groups


def needed_objects(root: Path, targets: list[str] | None, store: Path) -> list[str]:
    """md5 names (``.dir`` listings included) of the objects a pull of ``targets`` reads."""
    return sorted(set().union(*needed_groups(root, targets, store).values()))


def bundled_remote_dir(root: Path) -> Path:
    """The folder of the DVC remote ``bundled`` (its url in .dvc/config, relative urls taken from ``.dvc/``)."""
    url = remote_url(root, BUNDLED_REMOTE)
    if "://" in url:
        raise ValueError(f"remote {BUNDLED_REMOTE!r} must be a local folder, .dvc/config says {url!r}")
    return (root / ".dvc" / os.path.expanduser(url)).resolve()


@dataclass
class Unpacked:
    remote: Path  # the local remote folder
    archives: list[str] = field(default_factory=list)  # archives the targets need
    extracted: list[str] = field(default_factory=list)  # of those, extracted by this call (others were already)
    objects: int = 0  # objects the targets need


def unpack_for(root: Path, targets: list[str] | None = None) -> Unpacked:
    """Unpack into the ``bundled`` remote folder the archives a pull of ``targets`` needs, and only those."""
    bundle, dest = root / BUNDLE_DIR, bundled_remote_dir(root)
    manifest = load_manifest(bundle)
    dest.mkdir(parents=True, exist_ok=True)
    result = Unpacked(dest)
    listings = f"{LISTINGS}.tar"
    if listings in manifest["archives"] and unpack(bundle, listings, manifest, dest):
        result.extracted.append(listings)
    for _, out_path, md5 in tracked_outputs(root):
        if md5.endswith(".dir") and not object_path(dest, md5).is_file():
            raise BundleError(f"{bundle / listings} lacks the listing {md5} of {out_path}: the bundle is older than "
                              f"the .dvc files; rewrite it (`lowres-ocr data bundle`)")
    groups = needed_groups(root, targets, dest)
    for group in sorted(groups):
        name = f"{group}.tar"
        if group != LISTINGS and unpack(bundle, name, manifest, dest):
            result.extracted.append(name)
        result.archives.append(name)
        missing = sorted(o for o in groups[group] if not object_path(dest, o).is_file())
        if missing and name not in result.extracted:  # recorded as extracted, files since removed: extract again
            unpack(bundle, name, manifest, dest, force=True)
            result.extracted.append(name)
            missing = sorted(o for o in groups[group] if not object_path(dest, o).is_file())
        if missing:
            raise BundleError(f"{bundle / name}: {len(missing)} needed object(s) not in the archive, e.g. {missing[0]}; "
                              f"rewrite the bundle (`lowres-ocr data bundle`)")
        result.objects += len(groups[group])
    return result


@dataclass
class PullResult:
    source: str  # "s3" (configured remote) or "bundled" (local remote unpacked from dvc-bundle/)
    seconds: float
    output: str
    unpacked: Unpacked | None = None  # bundled: what was unpacked


def pull(root: str | Path | None = None, targets: list[str] | None = None, source: str = "auto",
         remote: str = DEFAULT_REMOTE, jobs: int | None = None, timeout: float = 1800) -> PullResult:
    """``dvc pull`` of ``targets`` (default: everything); see the module docstring for the two sources.

    ``remote`` names the S3 remote. dvc runs with a fresh, private site cache (``DVC_SITE_CACHE_DIR``). The shared one
    under /var/tmp/dvc keeps a data index per checkout that can go stale: measured here, after the test suite had run
    in a fresh clone, a full pull of that clone answered "Everything is up to date", fetched nothing, failed its
    checkout and removed all of ``data/`` (its git-tracked README included). A fresh index costs about 3 s on a pull of
    present sets.
    """
    t0 = time.perf_counter()
    root = repo_root(root)
    if source not in ("auto", "s3", "bundled"):
        raise ValueError(f"source must be auto, s3 or bundled, got {source!r}")
    if source == "auto":
        source = "s3" if s3_configured(root, remote) else "bundled"
    unpacked = unpack_for(root, targets) if source == "bundled" else None
    args = ["pull", "-r", remote if source == "s3" else BUNDLED_REMOTE] + (["-j", str(jobs)] if jobs else [])
    with tempfile.TemporaryDirectory(prefix="dvc-site-") as site:
        out = run_dvc(args + list(targets or []), root, env=dvc_env({"DVC_SITE_CACHE_DIR": site}), timeout=timeout)
    return PullResult(source, time.perf_counter() - t0, out, unpacked)
