"""The bundled DVC remote: the datasets' DVC objects as a few deterministic, uncompressed tar archives in git.

Layout of ``dvc-bundle/`` (written by ``lowres-ocr data bundle``, read by ``lowres-ocr data pull``):

- ``<set>.tar``: the objects of one set, i.e. of the files under one first-level folder of a tracked directory
  (``data/svtp_test/...`` -> ``svtp_test.tar``), as members ``files/md5/xx/yyyy``: DVC's local-remote layout;
- ``_listings.tar``: the ``.dir`` listing objects of the tracked directories;
- ``_files.tar``: objects of files directly inside a tracked directory or tracked alone (only if there are any);
- ``manifest.json``: per archive its sha256, size and object count, and the listing md5 of each tracked output.

The archives are uncompressed (the objects are PNG/JPEG files: gzip and xz save under 1 %) and deterministic:
members sorted by name, ustar format, mtime 0, uid/gid 0, no owner names, mode 0644. The same objects always give
the same bytes, so an unchanged set keeps its git blob when another set changes.

``unpack`` checks an archive against the manifest (sha256 first, then member names and count) and extracts it into
a plain folder that ``dvc pull -r bundled`` reads as a local remote.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BUNDLE_DIR = "dvc-bundle"
MANIFEST = "manifest.json"
LISTINGS = "_listings"
LOOSE = "_files"
FORMAT = 1
_MEMBER = re.compile(r"files/md5/[0-9a-f]{2}/[0-9a-f]{30}(\.dir)?")
_UNPACKED = "bundle-unpacked.json"  # in the unpacked remote: archive name -> sha256 of what was extracted


class BundleError(RuntimeError):
    """The bundle is missing, corrupt, or does not hold what the .dvc files track; the message names the file."""


def object_path(store: Path, md5: str) -> Path:
    """Where object ``md5`` lies in a folder with DVC's cache / local-remote layout."""
    return store / "files" / "md5" / md5[:2] / md5[2:]


def member_name(md5: str) -> str:
    return f"files/md5/{md5[:2]}/{md5[2:]}"


def tracked_outputs(root: Path) -> list[tuple[str, str, str]]:
    """``(dvc file, output path, md5)`` of every output of the ``*.dvc`` files in ``root``."""
    outs = []
    for dvcfile in sorted(p for p in root.glob("*.dvc") if p.is_file()):
        for out in (yaml.safe_load(dvcfile.read_text(encoding="utf-8")) or {}).get("outs", []):
            outs.append((dvcfile.name, str(out["path"]).strip("/"), str(out["md5"])))
    return outs


def group_of(relpath: str) -> str:
    """The archive (without ``.tar``) holding the object of ``relpath`` inside a tracked directory."""
    head, sep, _ = relpath.partition("/")
    return head if sep else LOOSE


def read_listing(store: Path, md5: str) -> list[dict[str, Any]]:
    """The entries (``relpath``, ``md5``) of the ``.dir`` object ``md5`` in ``store``."""
    path = object_path(store, md5)
    if not path.is_file():
        raise BundleError(f"{path}: listing object {md5} not found")
    return json.loads(path.read_text(encoding="utf-8"))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def plan_groups(root: Path, store: Path) -> dict[str, set[str]]:
    """Archive name (without ``.tar``) -> the object md5s it holds, for every output the .dvc files track."""
    groups: dict[str, set[str]] = defaultdict(set)
    for _, _, md5 in tracked_outputs(root):
        if not md5.endswith(".dir"):
            groups[LOOSE].add(md5)
            continue
        groups[LISTINGS].add(md5)
        for entry in read_listing(store, md5):
            groups[group_of(entry["relpath"])].add(entry["md5"])
    return dict(groups)


def _read_object(stores: list[Path], md5: str) -> bytes:
    """Object ``md5`` from the first store that has it, checked against its name."""
    for store in stores:
        path = object_path(store, md5)
        if path.is_file():
            data = path.read_bytes()
            if hashlib.md5(data).hexdigest() != md5.removesuffix(".dir"):
                raise BundleError(f"{path}: content does not match its md5 name (corrupt object)")
            return data
    raise BundleError(f"object {md5} is in none of {', '.join(map(str, stores))}: pull or `dvc add` the data first")


def tar_bytes(stores: list[Path], objects: set[str]) -> bytes:
    """A deterministic uncompressed tar of ``objects`` in the local-remote layout."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for md5 in sorted(objects, key=member_name):
            data = _read_object(stores, md5)
            info = tarfile.TarInfo(member_name(md5))
            info.size, info.mtime, info.mode, info.type = len(data), 0, 0o644, tarfile.REGTYPE
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` (atomically) unless it already holds exactly these bytes."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


@dataclass
class BundleReport:
    out: Path
    archives: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> manifest entry
    written: list[str] = field(default_factory=list)  # archives whose bytes changed
    removed: list[str] = field(default_factory=list)  # archives of sets no longer tracked


def write_bundle(root: Path, stores: list[Path], out: Path | None = None) -> BundleReport:
    """(Re)write ``dvc-bundle/`` from the objects in ``stores`` (DVC cache layout), for what the .dvc files track.

    Unchanged archives are left untouched; archives of groups no longer tracked are removed.
    """
    out = out or root / BUNDLE_DIR
    out.mkdir(parents=True, exist_ok=True)
    groups = plan_groups(root, next((s for s in stores if _has_listings(root, s)), stores[0]))
    report = BundleReport(out)
    for group in sorted(groups):
        name = f"{group}.tar"
        data = tar_bytes(stores, groups[group])
        if _write_if_changed(out / name, data):
            report.written.append(name)
        report.archives[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                                 "objects": len(groups[group])}
    for stale in sorted(out.glob("*.tar")):
        if stale.name not in report.archives:
            stale.unlink()
            report.removed.append(stale.name)
    manifest = {"format": FORMAT, "layout": "tar members files/md5/xx/yyyy (DVC local remote)",
                "outputs": {f"{f}:{p}": md5 for f, p, md5 in tracked_outputs(root)}, "archives": report.archives}
    _write_if_changed(out / MANIFEST, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode("utf-8"))
    return report


def _has_listings(root: Path, store: Path) -> bool:
    return all(object_path(store, md5).is_file() for _, _, md5 in tracked_outputs(root) if md5.endswith(".dir"))


def load_manifest(bundle: Path) -> dict[str, Any]:
    path = bundle / MANIFEST
    if not path.is_file():
        raise BundleError(f"{path} not found: this checkout has no bundled DVC remote (configure S3, "
                          f"or write one with `lowres-ocr data bundle`)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise BundleError(f"{path}: not valid JSON ({e})") from None
    if manifest.get("format") != FORMAT or not isinstance(manifest.get("archives"), dict):
        raise BundleError(f"{path}: not a format-{FORMAT} bundle manifest")
    return manifest


def _unpacked_state(dest: Path) -> dict[str, str]:
    try:
        return json.loads((dest / _UNPACKED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def unpack(bundle: Path, name: str, manifest: dict[str, Any], dest: Path, force: bool = False) -> bool:
    """Extract archive ``name`` of the bundle into ``dest`` after checking it.

    Returns False (and reads nothing) if ``dest`` records this very archive (same sha256) as extracted, unless
    ``force``.
    """
    entry = manifest["archives"].get(name)
    path = bundle / name
    if entry is None:
        raise BundleError(f"{bundle / MANIFEST} lists no archive {name}: rewrite the bundle (`lowres-ocr data bundle`)")
    state = _unpacked_state(dest)
    if state.get(name) == entry["sha256"] and not force:
        return False
    if not path.is_file():
        raise BundleError(f"{path} is missing (listed in {MANIFEST}); restore it: git checkout -- {BUNDLE_DIR}/{name}")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise BundleError(f"{path}: sha256 {digest[:16]}... differs from the manifest's {entry['sha256'][:16]}... "
                          f"({path.stat().st_size} bytes, manifest {entry['bytes']}): corrupt or truncated archive")
    count = _extract(path, dest)
    if count != entry["objects"]:
        raise BundleError(f"{path}: {count} objects, the manifest says {entry['objects']}")
    state[name] = entry["sha256"]
    tmp = dest / f".{_UNPACKED}.tmp"
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, dest / _UNPACKED)
    return True


def _extract(path: Path, dest: Path) -> int:
    """Write every member of the tar at ``path`` under ``dest``; only ``files/md5/xx/yyyy`` regular files pass."""
    count = 0
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                if not member.isreg() or not _MEMBER.fullmatch(member.name):
                    raise BundleError(f"{path}: unexpected member {member.name!r} (only files/md5/xx/yyyy files)")
                target = dest / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)
                assert src is not None  # a regular file always has a body
                tmp = target.with_name(f".{target.name}.tmp")
                tmp.write_bytes(src.read())
                os.replace(tmp, target)
                count += 1
    except tarfile.TarError as e:
        raise BundleError(f"{path}: not a readable tar archive ({e})") from None
    return count
