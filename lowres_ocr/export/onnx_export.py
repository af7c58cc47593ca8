"""ONNX export of the deployed path (``LowResOCR.infer``) and its metadata."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import lowres_ocr
from lowres_ocr.core.charset import ASCII, CHARSET, Charset
from lowres_ocr.core.geometry import SQUEEZE, Geometry

OPSET = 17
INPUT_NAME = "lr"
OUTPUT_NAMES = ("probs", "sr")
#: The best class per step (int32 [B, T]) and its probability (float32 [B, T]): all greedy decoding needs, so a
#: server moves T numbers per crop to its decoder instead of T × classes (``lowres_ocr.core.decoding.decode_best``).
BEST_NAMES = ("best", "best_prob")


def onnx_metadata(config: dict[str, Any] | None = None, charset: Charset = ASCII,
                  geometry: Geometry = SQUEEZE) -> dict[str, str]:
    """Key/value metadata stored in the ONNX file (all strings); ``model_settings`` reads charset and geometry back."""
    _, h, w = geometry.input_shape()
    _, sh, sw = geometry.sr_shape()
    return {
        "lowres_ocr_version": lowres_ocr.__version__,
        "charset_name": charset.name,
        "charset": charset.to_text(),  # one symbol per line; symbol i has class i + 1
        "num_classes": str(charset.num_classes),
        "blank_index": "0",
        "geometry": json.dumps(geometry.to_config(), sort_keys=True),
        "input": f"{INPUT_NAME}: float32 [B,3,{h},{w}] RGB in [0,1] (lowres_ocr.core.geometry, {geometry.kind})",
        "input_size": f"{w}x{h}",
        "sr_size": f"{sw}x{sh}",
        "outputs": f"probs: float32 [B,T,{charset.num_classes}] softmax, class 0 = CTC blank (ctc) or end of sequence "
        f"(attention); sr: float32 [B,3,{sh},{sw}] in [0,1]; best: int32 [B,T] argmax of probs; best_prob: float32 "
        "[B,T] its probability",
        "decoder": str((config or {}).get("decoder", "ctc")),  # how to read probs: lowres_ocr.core.decoding.decode
        "model_config": json.dumps(config or {}, sort_keys=True),
    }


def model_settings(metadata: dict[str, str]) -> tuple[Charset, Geometry]:
    """Charset and input geometry of an exported model from its metadata (none stored: ascii, squeeze 16×64)."""
    text = metadata.get("charset")
    if not text:
        charset = ASCII
    elif "charset_name" not in metadata and "\n" not in text:  # single-line form: one character per symbol
        charset = ASCII if text == CHARSET else Charset("custom", list(text))
    else:
        charset = Charset.from_text(metadata.get("charset_name", "custom"), text)
    geometry = Geometry.from_config(json.loads(metadata["geometry"])) if metadata.get("geometry") else SQUEEZE
    return charset, geometry


def export_onnx(model: Any, out: Path, *, config: dict[str, Any] | None = None, opset: int = OPSET) -> Path:
    """Export ``model.infer`` (torch ``nn.Module``) to ``out`` with a dynamic batch axis; runs onnx.checker."""
    import onnx
    import torch

    class _InferPath(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, lr: torch.Tensor) -> tuple[torch.Tensor, ...]:
            probs, sr = self.inner.infer(lr)
            best_prob, best = probs.max(dim=-1)
            return probs, sr, best.to(torch.int32), best_prob

    wrapper = _InferPath(model).eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.rand(2, *model.geometry.input_shape())
    # the tracer warns about RNN initial states and shape-dependent Python code; the dynamic batch axis is
    # verified by the parity check (batch sizes 1, 3 and 50) instead
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper, (dummy,), str(out), input_names=[INPUT_NAME], output_names=[*OUTPUT_NAMES, *BEST_NAMES],
            dynamic_axes={n: {0: "batch"} for n in (INPUT_NAME, *OUTPUT_NAMES, *BEST_NAMES)}, opset_version=opset, dynamo=False,
        )
    proto = onnx.load(str(out))
    del proto.metadata_props[:]
    for key, value in onnx_metadata(config, model.charset, model.geometry).items():
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name = "lowres-ocr"
    proto.producer_version = lowres_ocr.__version__
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(out))
    return out


def read_metadata(onnx_path: Path) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(str(onnx_path), load_external_data=False).metadata_props}


def ort_session(onnx_path: Path, threads: int = 0) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])
