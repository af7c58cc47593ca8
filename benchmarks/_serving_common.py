"""Shared helpers of the benchmark scripts: the model to measure and the real crops to feed it."""

from __future__ import annotations

import importlib.util
import io
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RELEASED = ROOT / "model" / "lowres_ocr.pt"
FIXTURE_CROPS = ROOT / "tests" / "fixtures" / "real_crops"


def default_crops_dir() -> Path:
    """data/ (the carried benchmark sets, after `dvc pull`) when present, else the 210-crop test fixture."""
    data = ROOT / "data"
    if data.is_dir() and any((p / "labels.tsv").is_file() for p in data.iterdir() if p.is_dir()):
        return data
    return FIXTURE_CROPS


def load_crops(source: Path, count: int) -> list[tuple[str, bytes]]:
    from lowres_ocr.data.reader import iter_crops

    crops = []
    for item in iter_crops(source):
        crops.append(item)
        if len(crops) == count:
            break
    return crops


def resolve_onnx(onnx: Path | None, weights: Path | None) -> tuple[Path, str]:
    """The ONNX to measure: --onnx, else an export of --weights, the released checkpoint or the default network."""
    if onnx is not None:
        return onnx, str(onnx)
    import torch

    from lowres_ocr.export.onnx_export import export_onnx
    from lowres_ocr.network import build_model, load_model

    out = Path(tempfile.mkdtemp(prefix="lowres_ocr_bench_")) / "model.onnx"
    if weights is None and RELEASED.is_file():
        weights = RELEASED
    if weights is not None:
        model, payload = load_model(weights)
        return export_onnx(model, out, config=payload["config"]), f"export of {weights}"
    if importlib.util.find_spec("rapidocr") is None:
        raise SystemExit("no --onnx/--weights, no model/lowres_ocr.pt, and rapidocr (default network init) is missing")
    torch.manual_seed(0)
    model = build_model(None).eval()
    return export_onnx(model, out, config=model.config), "default network (PP-OCR init, seeded SR; untrained)"


class InProcessReader:
    """The served per-crop work in this process: encoded bytes → the model's input geometry (from the ONNX metadata)
    → ONNX Runtime → decoding with the model's charset."""

    def __init__(self, onnx: Path, threads: int = 0) -> None:
        from lowres_ocr.export.onnx_export import model_settings, ort_session, read_metadata

        self.session = ort_session(onnx, threads)
        metadata = read_metadata(onnx)
        self.decoder = metadata.get("decoder", "ctc")
        self.charset, self.geometry = model_settings(metadata)

    def __call__(self, batch: list[bytes]) -> list[str]:
        from lowres_ocr.core.decoding import decode
        from lowres_ocr.serving.image_input import image_bytes_to_input

        lr = np.stack([image_bytes_to_input(b, geometry=self.geometry) for b in batch])
        return [d.text for d in decode(self.session.run(["probs"], {"lr": lr})[0], self.decoder, self.charset)]


def rapidocr_reader(threads: int = 0, batch: int = 1) -> Callable[[list[bytes]], list[str]]:
    """rapidocr's PP-OCRv6 recognizer as a user calls it: PIL decode → BGR array → its ``TextRecognizer`` (48 px high,
    aspect kept, its own preprocessing and CTC decoding), ``batch`` crops per ONNX Runtime call."""
    from PIL import Image
    from rapidocr import RapidOCR
    from rapidocr.ch_ppocr_rec import TextRecInput

    params = {"Global.log_level": "error", "Rec.rec_batch_num": batch,
              "EngineConfig.onnxruntime.intra_op_num_threads": threads if threads > 0 else -1}
    recognizer = RapidOCR(params=params)._load_rec_model()

    def run(items: list[bytes]) -> list[str]:
        imgs = [np.ascontiguousarray(np.asarray(Image.open(io.BytesIO(b)).convert("RGB"))[:, :, ::-1]) for b in items]
        return list(recognizer(TextRecInput(img=imgs)).txts)

    return run


#: Whole images of the end-to-end set (after `lowres-ocr data pull`).
PAGES_DIR = ROOT / "data" / "ic15_e2e_test" / "images"
PAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def page_files(folder: Path, limit: int) -> list[Path]:
    """The first ``limit`` images of ``folder`` in name order (all when ``limit`` is 0); exits when there are none."""
    paths = sorted(p for p in folder.glob("*") if p.suffix.lower() in PAGE_SUFFIXES) if folder.is_dir() else []
    if not paths:
        raise SystemExit(f"{folder}: no .jpg/.png images (the ic15_e2e_test set comes with `lowres-ocr data pull`)")
    return paths[:limit] if limit else paths


def page_repository(onnx: Path, instances: int = 2) -> Path:
    """A --local Triton repository (python backends) with the crop ensemble and the page endpoint."""
    from lowres_ocr.page.serving import PageOptions
    from lowres_ocr.serving.repository import RepositoryOptions, write_repository

    out = Path(tempfile.mkdtemp(prefix="lowres_ocr_pages_")) / "models"
    return write_repository(onnx, out, options=RepositoryOptions(local=True, page=PageOptions(instances=instances)))
