"""KFP steps of the export stage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any


def export_onnx(checkpoint: Path, out: Path, parity_data: Path, parity_count: int = 200) -> dict[str, Any]:
    from lowres_ocr.export import onnx_export, parity
    from lowres_ocr.network import load_model

    model, payload = load_model(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    path = onnx_export.export_onnx(model, out / "model.onnx", config=payload.get("config"))
    names, lr = parity.load_crops(parity_data, parity_count, model.geometry)
    result = parity.check_parity(model, path, names, lr)
    if not result.passed:
        raise RuntimeError(f"ONNX parity failed: {result.summary()}")
    return {"parity": result.summary(), "crops": len(names), "bytes": path.stat().st_size}


def convert_tensorrt(onnx_path: Path, out: Path, fp16: bool = True) -> dict[str, Any]:
    """``lowres-ocr export tensorrt``; exit 69 (no GPU/TensorRT) → {"built": False}."""
    from lowres_ocr.export.tensorrt import EXIT_SKIPPED

    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "lowres_ocr.cli", "export", "tensorrt", "--onnx", str(onnx_path), "--out", str(out / "model.plan")]
    if fp16:
        cmd.append("--fp16")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    if proc.returncode == EXIT_SKIPPED:
        return {"built": False, "reason": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "skipped"}
    if proc.returncode != 0:
        raise RuntimeError(f"TensorRT conversion failed (exit {proc.returncode})")
    return {"built": True}
