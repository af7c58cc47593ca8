"""Fixtures for the serving tests: an exported model that reads real text, its local repository, a live server.

The served model is the released checkpoint ``model/lowres_ocr.pt`` when the repo carries it, else the
default network (PP-OCR recognizer weights from the rapidocr wheel, seeded SR branch), else the tiny
random model; the in-process reference is the same PyTorch model.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
REAL_CROPS = ROOT / "tests" / "fixtures" / "real_crops"
RELEASED = ROOT / "model" / "lowres_ocr.pt"


@dataclass
class ServedModel:
    name: str
    onnx: Path
    crops: list[tuple[str, bytes]]  # (name, encoded bytes) of the real crops
    texts: list[str]  # in-process PyTorch predictions (ctc_greedy), same order
    confidences: np.ndarray


def _build_model():
    import torch

    from lowres_ocr.network import build_model, load_model, tiny_config

    if RELEASED.is_file():
        return "released model/lowres_ocr.pt", load_model(RELEASED)[0]
    torch.manual_seed(0)
    if importlib.util.find_spec("rapidocr") is not None:
        return "default network (PP-OCR init from rapidocr, seeded SR)", build_model(None).eval()
    return "tiny random network", build_model(tiny_config()).eval()


@pytest.fixture(scope="session")
def served_model(tmp_path_factory: pytest.TempPathFactory) -> ServedModel:
    import torch

    from lowres_ocr.core.decoding import decode
    from lowres_ocr.export.onnx_export import export_onnx
    from lowres_ocr.data.reader import iter_crops
    from lowres_ocr.serving.image_input import image_bytes_to_input

    name, model = _build_model()
    onnx_path = export_onnx(model, tmp_path_factory.mktemp("served") / "model.onnx", config=model.config)
    crops = list(iter_crops(REAL_CROPS))
    lr = np.stack([image_bytes_to_input(data, name=n, geometry=model.geometry) for n, data in crops])
    with torch.no_grad():
        probs = torch.cat([model.infer(torch.from_numpy(lr[i : i + 64]))[0] for i in range(0, len(lr), 64)]).numpy()
    decoded = decode(probs, model.decoder, model.charset)
    return ServedModel(name, onnx_path, crops, [d.text for d in decoded], np.array([d.confidence for d in decoded]))


@pytest.fixture(scope="session")
def local_repo(served_model: ServedModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lowres_ocr.serving.repository import RepositoryOptions, write_repository

    return write_repository(served_model.onnx, tmp_path_factory.mktemp("repo") / "models", options=RepositoryOptions(local=True))


@pytest.fixture(scope="session")
def triton(local_repo: Path):
    from lowres_ocr.serving.server import TritonServer

    with TritonServer(local_repo, ready_timeout=120) as server:
        yield server
    assert server.returncode == 0, "tritonserver did not exit cleanly"
    assert not list(Path("/dev/shm").glob(f"{server.shm_prefix}*"))
