"""Fixtures for the evaluation tests: small dataset folders (with bad samples) and a fake predictor."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lowres_ocr.core.decoding import Decoded
from lowres_ocr.core.geometry import HR_SIZE, hr_input

# (label, what the fake predictor answers for it)
WORDS = [("PARKING", "parking"), ("Salutes", "SALUTES"), ("cap GIRO", "capgiro"), ("door", "dour"), ("42", "42"),
         ("Fox", "")]


def color(i: int) -> tuple[int, int, int]:
    return (10 + 20 * i, 200 - 15 * i, (37 * i) % 256)


def striped(i: int, size: tuple[int, int] = HR_SIZE) -> Image.Image:
    """A colour per sample (read back by the fake predictor) with stripes so that SSIM has structure."""
    arr = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    arr[:] = color(i)
    arr[:, 16::16] = 255 - np.array(color(i), dtype=np.uint8)
    arr[0, 0] = color(i)
    return Image.fromarray(arr)


class FakePredictor:
    """Answers by the top-left pixel colour of the image; super-resolves by resizing to 32×128."""

    modes = ("sr", "bicubic", "hr")

    def __init__(self, answers: dict[tuple[int, int, int], str], name: str = "fake") -> None:
        self.answers = answers
        self.name = name
        self.source = "memory"
        self.device = "cpu"
        self.calls: list[tuple[str, int]] = []

    def predict(self, images: list[Image.Image], mode: str, batch_size: int) -> list[Decoded]:
        assert mode in self.modes and len(images) <= batch_size
        self.calls.append((mode, len(images)))
        return [Decoded(self.answers.get(im.convert("RGB").getpixel((0, 0)), "?"), 0.9, []) for im in images]

    def super_resolve(self, images: list[Image.Image], batch_size: int) -> np.ndarray:
        return np.stack([hr_input(im) for im in images])


@pytest.fixture()
def fake() -> FakePredictor:
    return FakePredictor({color(i): ans for i, (_, ans) in enumerate(WORDS)})


@pytest.fixture()
def words_dir(tmp_path: Path) -> Path:
    """6 good crops + a corrupt image, a missing file, an empty label, a too-long label, a malformed line."""
    root = tmp_path / "words"
    (root / "images").mkdir(parents=True)
    lines = []
    for i, (label, _) in enumerate(WORDS):
        striped(i, (100 + i, 30)).save(root / "images" / f"{i}.png")
        lines.append(f"images/{i}.png\t{label}")
    (root / "images" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    striped(0).save(root / "images" / "empty.png")
    striped(0).save(root / "images" / "long.png")
    lines += ["images/corrupt.png\tBROKEN", "images/missing.png\tGONE", "images/empty.png\t",
              "images/long.png\t" + "x" * 30, "just one column"]
    (root / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # a case-sensitive variant of the labels, like IIIT5K's labels_cs.tsv
    (root / "labels_cs.tsv").write_text("\n".join(f"images/{i}.png\t{lab.lower()}" for i, (lab, _) in enumerate(WORDS)) + "\n",
                                        encoding="utf-8")
    return root


@pytest.fixture()
def pairs_dir(tmp_path: Path) -> Path:
    """TextZoom-style pairs; LR is stored at the HR size with the same pixels (as the real TextZoom folders)."""
    root = tmp_path / "pairs"
    (root / "hr").mkdir(parents=True)
    (root / "lr").mkdir()
    lines = []
    for i, (label, _) in enumerate(WORDS):
        striped(i).save(root / "hr" / f"{i:09d}.png")
        striped(i).save(root / "lr" / f"{i:09d}.png")
        lines.append(f"hr/{i:09d}.png\tlr/{i:09d}.png\t{label}")
    (root / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (untrained) checkpoint of the tiny network."""
    import torch

    from lowres_ocr.network import build_model, save_checkpoint, tiny_config

    torch.manual_seed(0)
    config = tiny_config()
    model = build_model(config)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model, config)
    return path


CHROMIUM_NAMES = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")
NO_CHROMIUM = "headless Chromium not installed (scripts/bootstrap --test, or apt-get install chromium-headless-shell)"


def chromium() -> str | None:
    """The first headless-capable Chromium on PATH, or None."""
    return next((shutil.which(n) for n in CHROMIUM_NAMES if shutil.which(n)), None)


def screenshot(html: Path, shot: Path, profile: Path, window: tuple[int, int] = (1200, 1400)) -> np.ndarray:
    """``html`` rendered by headless Chromium (no network, fresh profile ``profile``) → RGB pixels [H, W, 3]."""
    binary = chromium()
    if binary is None:
        pytest.skip(NO_CHROMIUM)
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
           f"--window-size={window[0]},{window[1]}", f"--screenshot={shot}", html.as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return np.asarray(Image.open(shot).convert("RGB"))
