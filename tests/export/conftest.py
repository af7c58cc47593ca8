"""Fixtures for the export tests: a seeded tiny checkpoint and the real crops carried by the repo."""

from __future__ import annotations

from pathlib import Path

import pytest

REAL_CROPS = Path(__file__).resolve().parents[1] / "fixtures" / "real_crops"


@pytest.fixture(scope="session")
def real_crops() -> Path:
    return REAL_CROPS


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from lowres_ocr.network import build_model, save_checkpoint, tiny_config

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, build_model(tiny_config()).eval())
    return path


@pytest.fixture(scope="session")
def tiny_onnx(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lowres_ocr.export.onnx_export import export_onnx
    from lowres_ocr.network import load_model

    model, payload = load_model(tiny_checkpoint)
    return export_onnx(model, tmp_path_factory.mktemp("onnx") / "tiny.onnx", config=payload["config"])
