"""Shared fixtures: small real datasets built from tests/fixtures (no DVC pull needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

FIXTURES = Path(__file__).parent / "fixtures"
REAL_CROPS = FIXTURES / "real_crops"


@pytest.fixture(scope="session")
def real_words_dir() -> Path:
    """210 real benchmark word crops (folder + labels.tsv)."""
    return REAL_CROPS


@pytest.fixture(scope="session")
def real_pairs_dir(tmp_path_factory) -> Path:
    """LR/HR pairs made from the real crops: HR = crop at 128×32, LR = 64×16 bicubic (TextZoom layout)."""
    root = tmp_path_factory.mktemp("pairs")
    (root / "hr").mkdir()
    (root / "lr").mkdir()
    lines = []
    for i, line in enumerate((REAL_CROPS / "labels.tsv").read_text(encoding="utf-8").splitlines()):
        path, label = line.split("\t")
        img = Image.open(REAL_CROPS / path).convert("RGB")
        img.resize((128, 32), Image.BICUBIC).save(root / "hr" / f"{i:09d}.png")
        img.resize((64, 16), Image.BICUBIC).save(root / "lr" / f"{i:09d}.png")
        lines.append(f"hr/{i:09d}.png\tlr/{i:09d}.png\t{label}")
    (root / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture()
def copy_of(tmp_path):
    def _copy(src: Path) -> Path:
        dst = tmp_path / src.name
        shutil.copytree(src, dst)
        return dst
    return _copy
