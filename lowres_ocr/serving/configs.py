"""config.pbtxt text for the four models of the Triton repository (ensemble ``lowres_ocr``).

preprocess (python) → recognizer (onnxruntime_onnx | tensorrt_plan | python+ORT for ``--local``) → decode (python).
Shapes exclude the batch dimension (every model has ``max_batch_size`` > 0); clients send [B, 1] bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lowres_ocr.serving.image_input import ImageLimits

ENSEMBLE = "lowres_ocr"
PREPROCESS = "preprocess"
RECOGNIZER = "recognizer"
DECODE = "decode"

RecognizerBackend = Literal["onnxruntime", "tensorrt", "python"]


@dataclass(frozen=True)
class Scheduling:
    """Dynamic batching and instance groups of one model."""

    max_batch_size: int = 64
    max_queue_delay_us: int = 500
    preferred_batch_sizes: tuple[int, ...] = ()
    instances: int = 1
    kind: Literal["KIND_CPU", "KIND_GPU"] = "KIND_CPU"

    def __post_init__(self) -> None:
        if self.max_batch_size < 1 or self.instances < 1 or self.max_queue_delay_us < 0:
            raise ValueError(f"invalid scheduling {self}")
        if any(not 1 <= b <= self.max_batch_size for b in self.preferred_batch_sizes):
            raise ValueError(f"preferred batch sizes {self.preferred_batch_sizes} must lie in 1..{self.max_batch_size}")

    def text(self) -> str:
        preferred = ""
        if self.preferred_batch_sizes:
            preferred = f"  preferred_batch_size: [ {', '.join(map(str, self.preferred_batch_sizes))} ]\n"
        return (
            "dynamic_batching {\n"
            f"{preferred}"
            f"  max_queue_delay_microseconds: {self.max_queue_delay_us}\n"
            "}\n"
            f"instance_group [ {{ kind: {self.kind} count: {self.instances} }} ]\n"
        )


def _dims(shape: tuple[int, ...]) -> str:
    return "[ " + ", ".join(str(d) for d in shape) + " ]"


def _tensor(name: str, dtype: str, shape: tuple[int, ...]) -> str:
    return f"  {{ name: \"{name}\" data_type: {dtype} dims: {_dims(shape)} }}"


def _io(kind: str, tensors: list[str]) -> str:
    return f"{kind} [\n" + ",\n".join(tensors) + "\n]\n"


def _parameters(params: dict[str, str]) -> str:
    return "".join(f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}\n' for k, v in params.items())


def preprocess_config(limits: ImageLimits, lr_shape: tuple[int, int, int], sched: Scheduling,
                      geometry: dict[str, str] | None = None) -> str:
    """``geometry``: the model's input geometry as ``geometry_*`` parameters (``image_input.geometry_parameters``)."""
    return (
        f'name: "{PREPROCESS}"\nbackend: "python"\nmax_batch_size: {sched.max_batch_size}\n'
        + _io("input", [_tensor("image", "TYPE_STRING", (1,))])
        + _io("output", [_tensor("lr", "TYPE_FP32", lr_shape)])
        + sched.text()
        + _parameters({k: str(getattr(limits, k)) for k in ("max_bytes", "min_side", "max_side", "max_pixels")})
        + _parameters(geometry or {})
    )


def recognizer_config(
    backend: RecognizerBackend,
    lr_shape: tuple[int, int, int],
    probs_shape: tuple[int, int],
    sr_shape: tuple[int, int, int] | None,
    sched: Scheduling,
    params: dict[str, str] | None = None,
    best: bool = False,
) -> str:
    head = {
        "onnxruntime": 'platform: "onnxruntime_onnx"\ndefault_model_filename: "model.onnx"\n',
        "tensorrt": 'platform: "tensorrt_plan"\ndefault_model_filename: "model.plan"\n',
        "python": 'backend: "python"\n',
    }[backend]
    outputs = [_tensor("probs", "TYPE_FP32", probs_shape)]
    if sr_shape is not None:
        outputs.append(_tensor("sr", "TYPE_FP32", sr_shape))
    if best:
        outputs += [_tensor("best", "TYPE_INT32", probs_shape[:1]), _tensor("best_prob", "TYPE_FP32", probs_shape[:1])]
    return (
        f'name: "{RECOGNIZER}"\n{head}max_batch_size: {sched.max_batch_size}\n'
        + _io("input", [_tensor("lr", "TYPE_FP32", lr_shape)])
        + _io("output", outputs)
        + sched.text()
        + _parameters(params or {})
    )


def decode_config(probs_shape: tuple[int, int], sched: Scheduling, decoder: str = "ctc", charset_name: str = "ascii",
                  best: bool = False) -> str:
    """``best``: the inputs are the recognizer's best class per step and its probability, not every class's."""
    inputs = ([_tensor("best", "TYPE_INT32", probs_shape[:1]), _tensor("best_prob", "TYPE_FP32", probs_shape[:1])]
              if best else [_tensor("probs", "TYPE_FP32", probs_shape)])
    return (
        f'name: "{DECODE}"\nbackend: "python"\nmax_batch_size: {sched.max_batch_size}\n'
        + _io("input", inputs)
        + _io("output", [_tensor("text", "TYPE_STRING", (1,)), _tensor("confidence", "TYPE_FP32", (1,))])
        + sched.text()
        + _parameters({"decoder": decoder, "charset_name": charset_name})
    )


def ensemble_config(max_batch_size: int, best: bool = False) -> str:
    """``best``: the recognizer hands the decoder its best-class outputs (T numbers per crop, not T × classes)."""
    moved = ("best", "best_prob") if best else ("probs",)
    rec_out = "".join(f'      output_map {{ key: "{n}" value: "{n}_tensor" }}\n' for n in moved)
    dec_in = "".join(f'      input_map {{ key: "{n}" value: "{n}_tensor" }}\n' for n in moved)
    return (
        f'name: "{ENSEMBLE}"\nplatform: "ensemble"\nmax_batch_size: {max_batch_size}\n'
        + _io("input", [_tensor("image", "TYPE_STRING", (1,))])
        + _io("output", [_tensor("text", "TYPE_STRING", (1,)), _tensor("confidence", "TYPE_FP32", (1,))])
        + "ensemble_scheduling {\n  step [\n"
        f'    {{ model_name: "{PREPROCESS}" model_version: -1\n'
        '      input_map { key: "image" value: "image" }\n'
        '      output_map { key: "lr" value: "lr_tensor" } },\n'
        f'    {{ model_name: "{RECOGNIZER}" model_version: -1\n'
        '      input_map { key: "lr" value: "lr_tensor" }\n'
        + rec_out.rstrip("\n") + " },\n"
        f'    {{ model_name: "{DECODE}" model_version: -1\n'
        + dec_in
        + '      output_map { key: "text" value: "text" }\n'
        '      output_map { key: "confidence" value: "confidence" } }\n'
        "  ]\n}\n"
    )


DETECTOR = "detector"
PAGE = "lowres_ocr_page"


def detector_config(backend: RecognizerBackend, params: dict[str, str] | None = None) -> str:
    """The PP-OCR text detector (input ``x`` [1, 3, h, w], output ``fetch_name_0`` [1, 1, h, w]); one page per run."""
    head = {"onnxruntime": 'platform: "onnxruntime_onnx"\ndefault_model_filename: "model.onnx"\n',
            "python": 'backend: "python"\n'}[backend]
    return (
        f'name: "{DETECTOR}"\n{head}max_batch_size: 0\n'
        + _io("input", [_tensor("x", "TYPE_FP32", (1, 3, -1, -1))])
        + _io("output", [_tensor("fetch_name_0", "TYPE_FP32", (1, 1, -1, -1))])
        + "instance_group [ { kind: KIND_CPU count: 1 } ]\n"
        + _parameters(params or {})
    )


def page_config(instances: int, params: dict[str, str]) -> str:
    """The page model (python): one encoded page in, its lines out (detector and recognizer called through BLS)."""
    return (
        f'name: "{PAGE}"\nbackend: "python"\nmax_batch_size: 0\n'
        + _io("input", [_tensor("image", "TYPE_STRING", (1,))])
        + _io("output", [_tensor("points", "TYPE_FP32", (-1, 4, 2)), _tensor("text", "TYPE_STRING", (-1,)),
                         _tensor("confidence", "TYPE_FP32", (-1,))])
        + f"instance_group [ {{ kind: KIND_CPU count: {instances} }} ]\n"
        + _parameters(params)
    )
