"""Fixtures for the data-stage tests: tiny dataset folders written on the fly."""

from __future__ import annotations

import io
from pathlib import Path

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
