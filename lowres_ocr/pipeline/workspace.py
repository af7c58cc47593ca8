"""Where the pipeline steps find the checkout and the workspace volume."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml


def workspace() -> str:
    """Where the workspace PVC is mounted in the step's pod (and in the training / Triton pods)."""
    return os.environ.get("LOWRES_OCR_WORKSPACE", "/workspace")


def project_root() -> Path:
    """The checkout (or the image's /app): ``LOWRES_OCR_ROOT``, else the nearest folder above cwd with ``.dvc/``."""
    env = os.environ.get("LOWRES_OCR_ROOT")
    if env:
        return Path(env).resolve()
    from lowres_ocr.data.remote import repo_root

    return repo_root()


def link_tree(src: Path, dst: Path) -> None:
    """Copy a folder, hard-linking files where the filesystem allows (datasets are read-only inputs)."""
    def link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, dst, copy_function=link, dirs_exist_ok=True)


def data_md5(root: Path) -> str:
    doc = yaml.safe_load((root / "data.dvc").read_text())
    return str(doc["outs"][0]["md5"])
