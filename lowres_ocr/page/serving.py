"""The page endpoint of the Triton repository: models ``detector`` and ``lowres_ocr_page``.

Written by ``lowres_ocr.serving.repository.write_repository`` when ``RepositoryOptions.page`` is set::

    REPO/detector/{config.pbtxt, 1/model.onnx [, 1/model.py + 1/vendor/ for --local]}
    REPO/lowres_ocr_page/{config.pbtxt, 1/model.py, 1/charset.txt, 1/vendor/lowres_ocr/...}

The detector is the PP-OCR ONNX file of the rapidocr wheel (``onnxruntime_onnx`` in production, a python
model running ONNX Runtime on the local server); the page model calls it and the ``recognizer`` model through
BLS. The page model's python needs numpy, pillow, opencv and pyclipper (not lowres_ocr: its helpers are vendored).
"""

from __future__ import annotations

import inspect
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lowres_ocr.page import crop, detect
from lowres_ocr.page.detect import DetectorSettings

#: Page modules copied next to the vendored core helpers.
PAGE_VENDORED = {"lowres_ocr/page/detect.py": detect, "lowres_ocr/page/crop.py": crop}


@dataclass(frozen=True)
class PageOptions:
    """Settings of the page endpoint."""

    detector: DetectorSettings = DetectorSettings()
    instances: int = 2  # page model instances: pages in flight at once
    detector_onnx: Path | None = None  # default: the rapidocr wheel's PP-OCRv6_det_small.onnx


def write_page_vendor(version_dir: Path) -> None:
    """The core helpers (``repository.write_vendor``) plus ``lowres_ocr/page/{detect,crop}.py``."""
    from lowres_ocr.serving.repository import write_vendor

    write_vendor(version_dir)
    root = version_dir / "vendor" / "lowres_ocr" / "page"
    root.mkdir(parents=True, exist_ok=True)
    for rel, module in PAGE_VENDORED.items():
        (version_dir / "vendor" / rel).write_text(inspect.getsource(module), encoding="utf-8")
    (root / "__init__.py").write_text('"""Vendored: detect and crop only."""\n', encoding="utf-8")


def page_parameters(options: PageOptions, sig: Any, limits: Any, recognizer_max_batch: int, decoder: str) -> dict[str, str]:
    """The page model's config parameters: image limits, model geometry, detector settings, decoding."""
    from lowres_ocr.serving.image_input import geometry_parameters

    return {
        **{k: str(getattr(limits, k)) for k in ("max_bytes", "min_side", "max_side", "max_pixels")},
        **geometry_parameters(sig.geometry), **options.detector.to_parameters(),
        "recognizer_max_batch": str(recognizer_max_batch), "decoder": decoder, "charset_name": sig.charset.name,
    }


def write_page_models(out: Path, sig: Any, options: Any, decoder: str) -> None:
    """Write ``detector`` and ``lowres_ocr_page`` into the repository ``out`` (``options``: RepositoryOptions)."""
    from lowres_ocr.serving import configs
    from lowres_ocr.serving.repository import _template, _write_model

    page: PageOptions = options.page
    onnx_path = Path(page.detector_onnx) if page.detector_onnx else detect.detector_path()
    if not onnx_path.is_file():
        raise ValueError(f"{onnx_path}: detector ONNX file not found")
    backend = "python" if options.local else "onnxruntime"
    params = {"intra_op_threads": str(options.local_threads)} if options.local else {}
    det = _write_model(out, configs.DETECTOR, configs.detector_config(backend, params))
    shutil.copyfile(onnx_path, det / "model.onnx")
    if options.local:
        (det / "model.py").write_text(_template("detector_model.py"), encoding="utf-8")
        write_page_vendor(det)
    params = page_parameters(page, sig, options.limits, options.recognizer.max_batch_size, decoder)
    version = _write_model(out, configs.PAGE, configs.page_config(page.instances, params))
    (version / "model.py").write_text(_template("page_model.py"), encoding="utf-8")
    (version / "charset.txt").write_text(sig.charset.to_text(), encoding="utf-8")
    write_page_vendor(version)
