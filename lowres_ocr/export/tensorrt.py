"""TensorRT engine build and check (GPU only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from lowres_ocr.core.decoding import decode
from lowres_ocr.export.onnx_export import INPUT_NAME, model_settings, ort_session, read_metadata
from lowres_ocr.export.parity import PARITY_TOLERANCE

#: Exit code of ``export tensorrt`` when TensorRT or a GPU is missing (BSD EX_UNAVAILABLE): "skipped".
EXIT_SKIPPED = 69


class TensorRTUnavailable(RuntimeError):
    """TensorRT or a CUDA GPU is missing on this machine: the step is skipped (EXIT_SKIPPED)."""


@dataclass(frozen=True)
class BatchProfile:
    """The optimization profile over the batch axis: min ≤ opt ≤ max."""

    min_batch: int = 1
    opt_batch: int = 16
    max_batch: int = 64

    def __post_init__(self) -> None:
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            raise ValueError(
                f"batch profile needs 1 <= min <= opt <= max, got min={self.min_batch} opt={self.opt_batch} max={self.max_batch}"
            )

    def shapes(self, chw: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(min, opt, max) full input shapes for an input whose non-batch dims are ``chw`` (all static)."""
        chw = tuple(int(d) for d in chw)
        if any(d <= 0 for d in chw):
            raise ValueError(f"only the batch axis may be dynamic; got non-batch dims {chw}")
        return (self.min_batch, *chw), (self.opt_batch, *chw), (self.max_batch, *chw)


@dataclass(frozen=True)
class TrtSettings:
    profile: BatchProfile = BatchProfile()
    fp16: bool = False
    workspace_bytes: int = 2 << 30

    @property
    def tolerance(self) -> float:
        """Allowed max |probs diff| vs ONNX Runtime: FP32 engines 1e-3, FP16 engines 2e-2."""
        return 2e-2 if self.fp16 else PARITY_TOLERANCE


def require_tensorrt() -> ModuleType:
    """Import ``tensorrt`` and check for a CUDA GPU; raises TensorRTUnavailable saying what is missing."""
    try:
        import tensorrt as trt
    except ImportError as err:
        raise TensorRTUnavailable(
            f"TensorRT is not installed ({err}); install lowres-ocr[gpu] on a GPU machine or run this step in the "
            "NGC TensorRT/Triton image of the serving release"
        ) from None
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    if not has_gpu:
        raise TensorRTUnavailable("no CUDA GPU is visible (torch.cuda.is_available() is False); a TensorRT plan must be built on the serving GPU")
    return trt


def _trt_major(trt: ModuleType) -> int:
    return int(str(getattr(trt, "__version__", "10")).split(".")[0])


def configure_builder(trt: ModuleType, builder: Any, network: Any, settings: TrtSettings) -> Any:
    """Builder config: workspace limit, FP16 if asked (and supported), one profile over every input's batch axis."""
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_bytes)
    if settings.fp16:
        if not builder.platform_has_fast_fp16:
            raise RuntimeError("--fp16 asked for, but this GPU has no fast FP16 support")
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        profile.set_shape(tensor.name, *settings.profile.shapes(tuple(tensor.shape)[1:]))
    config.add_optimization_profile(profile)
    return config


def build_engine(onnx_path: Path, settings: TrtSettings, trt: ModuleType) -> bytes:
    """Parse ``onnx_path`` and build a serialized engine (plan) with ``settings``."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if _trt_major(trt) < 10:  # TensorRT 8.x needs explicit batch asked for; 10 has only explicit batch
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = configure_builder(trt, builder, network, settings)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError("TensorRT engine build failed (see the TensorRT log above)")
    return bytes(plan)


def run_engine(trt: ModuleType, plan: bytes, lr: np.ndarray) -> dict[str, np.ndarray]:
    """Run a serialized engine on ``lr`` [B,3,16,64] (CUDA buffers through torch); returns every output."""
    import torch

    logger = trt.Logger(trt.Logger.WARNING)
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    context = engine.create_execution_context()
    buffers: dict[str, torch.Tensor] = {}
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    for name in names:
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            context.set_input_shape(name, tuple(lr.shape))
            buffers[name] = torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32)).cuda()
    for name in names:
        if engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT:
            dtype = torch.from_numpy(np.zeros(0, dtype=trt.nptype(engine.get_tensor_dtype(name)))).dtype
            buffers[name] = torch.empty(tuple(context.get_tensor_shape(name)), dtype=dtype, device="cuda")
    for name, buf in buffers.items():
        context.set_tensor_address(name, buf.data_ptr())
    stream = torch.cuda.Stream()
    if not context.execute_async_v3(stream.cuda_stream):
        raise RuntimeError("TensorRT execution failed")
    stream.synchronize()
    return {n: buffers[n].float().cpu().numpy() for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT}


@dataclass
class EngineCheck:
    batch_sizes: list[int]
    max_abs_diff: float
    text_agreement: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.tolerance and self.text_agreement == 1.0

    def summary(self) -> str:
        return (
            f"TensorRT vs ONNX Runtime {'PASS' if self.passed else 'FAIL'}: batches {self.batch_sizes}, "
            f"max |probs diff| = {self.max_abs_diff:.2e} (limit {self.tolerance:.0e}), "
            f"decoded strings identical {self.text_agreement:.1%}"
        )


def check_engine(trt: ModuleType, plan: bytes, onnx_path: Path, settings: TrtSettings, lr: np.ndarray | None = None) -> EngineCheck:
    """Compare the engine with ONNX Runtime at the profile's min/opt/max batch sizes."""
    session = ort_session(onnx_path)
    metadata = read_metadata(onnx_path)
    decoder = metadata.get("decoder", "ctc")
    charset, geometry = model_settings(metadata)
    sizes = sorted({settings.profile.min_batch, settings.profile.opt_batch, settings.profile.max_batch})
    if lr is None:
        lr = np.random.default_rng(0).random((max(sizes), *geometry.input_shape()), dtype=np.float32)
    max_diff, same, total = 0.0, 0, 0
    for size in sizes:
        batch = np.resize(lr, (size, *lr.shape[1:])).astype(np.float32)
        expected = session.run(["probs"], {INPUT_NAME: batch})[0]
        got = run_engine(trt, plan, batch)["probs"]
        max_diff = max(max_diff, float(np.abs(expected - got).max()))
        same += sum(a.text == b.text for a, b in zip(decode(expected, decoder, charset), decode(got, decoder, charset)))
        total += size
    return EngineCheck(sizes, max_diff, same / total, settings.tolerance)
