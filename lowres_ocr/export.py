"""ONNX export of the deployed path (``LowResOCR.infer``) with a parity check, and the TensorRT build.

ONNX: input ``lr`` float32 [B,3,16,64] in [0,1] → outputs ``probs`` [B,T,95] (softmax, class 0 = CTC
blank) and ``sr`` [B,3,32,128]; the batch axis is dynamic; metadata (charset, input size, version, ...)
is stored in the model's ``metadata_props``. Parity: on real crops, max |probs_torch - probs_onnx| must be
≤ 1e-3 and the greedy-decoded strings identical (``lowres_ocr.decoding.decode`` with the model's
decoder: ``ctc`` or ``attention``).

TensorRT (GPU only): ``build_engine`` parses the ONNX, sets one optimization profile over the batch
axis, optionally FP16, serializes the plan; ``check_engine`` compares it with ONNX Runtime. Without the
``tensorrt`` package or a CUDA GPU, ``require_tensorrt`` raises TensorRTUnavailable and the CLI exits
with EXIT_SKIPPED (69, EX_UNAVAILABLE), which the pipeline treats as "skipped".
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

import lowres_ocr
from lowres_ocr.charset import CHARSET, NUM_CLASSES
from lowres_ocr.decoding import decode
from lowres_ocr.preprocess import HR_SIZE, LR_SIZE, batch_arrays, decode_image

OPSET = 17
INPUT_NAME = "lr"
OUTPUT_NAMES = ("probs", "sr")
PARITY_TOLERANCE = 1e-3
#: Exit code of ``export tensorrt`` when TensorRT or a GPU is missing (BSD EX_UNAVAILABLE): "skipped".
EXIT_SKIPPED = 69


# ------------------------------------------------------------------------------------------------ ONNX
def onnx_metadata(config: dict[str, Any] | None = None) -> dict[str, str]:
    """Key/value metadata stored in the ONNX file (all strings)."""
    return {
        "lowres_ocr_version": lowres_ocr.__version__,
        "charset": CHARSET,
        "num_classes": str(NUM_CLASSES),
        "blank_index": "0",
        "input": f"{INPUT_NAME}: float32 [B,3,{LR_SIZE[1]},{LR_SIZE[0]}] RGB in [0,1] (lowres_ocr.preprocess.to_array)",
        "input_size": f"{LR_SIZE[0]}x{LR_SIZE[1]}",
        "sr_size": f"{HR_SIZE[0]}x{HR_SIZE[1]}",
        "outputs": "probs: float32 [B,T,95] softmax, class 0 = CTC blank (ctc) or end of sequence (attention); "
        "sr: float32 [B,3,32,128] in [0,1]",
        "decoder": str((config or {}).get("decoder", "ctc")),  # how to read probs: lowres_ocr.decoding.decode
        "model_config": json.dumps(config or {}, sort_keys=True),
    }


def export_onnx(model: Any, out: Path, *, config: dict[str, Any] | None = None, opset: int = OPSET) -> Path:
    """Export ``model.infer`` (torch ``nn.Module``) to ``out`` with a dynamic batch axis; runs onnx.checker."""
    import onnx
    import torch

    class _InferPath(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.inner.infer(lr)

    wrapper = _InferPath(model).eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.rand(2, 3, LR_SIZE[1], LR_SIZE[0])
    # the tracer warns about RNN initial states and shape-dependent Python code; the dynamic batch axis is
    # verified by the parity check (batch sizes 1, 3 and 50) instead
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper, (dummy,), str(out), input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
            dynamic_axes={n: {0: "batch"} for n in (INPUT_NAME, *OUTPUT_NAMES)}, opset_version=opset, dynamo=False,
        )
    proto = onnx.load(str(out))
    del proto.metadata_props[:]
    for key, value in onnx_metadata(config).items():
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


# ---------------------------------------------------------------------------------------- real crops
def _dataset_rows(folder: Path) -> Iterator[tuple[str, Path]]:
    for line in (folder / "labels.tsv").read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0]:
            image = parts[1] if len(parts) >= 3 else parts[0]  # pairs: hr, lr, label → the LR crop
            yield f"{folder.name}/{image}", folder / image


def _is_lmdb(path: Path) -> bool:
    return (path / "data.mdb").is_file() or path.suffix == ".mdb"


def _lmdb_images(path: Path) -> Iterator[tuple[str, bytes]]:
    from lowres_ocr.data.lmdb_io import LmdbReader  # owned by the data stage

    reader = LmdbReader(path)
    for i in range(len(reader)):
        sample = reader[i]
        data = sample.lr if sample.lr is not None else sample.image
        if data is not None:
            yield f"{path.name}[{i}]", data


def _round_robin(sources: list[Iterator[Any]]) -> Iterator[Any]:
    while sources:
        for it in list(sources):
            try:
                yield next(it)
            except StopIteration:
                sources.remove(it)


def iter_crops(source: Path) -> Iterator[tuple[str, bytes]]:
    """Encoded crops (name, bytes) from a dataset folder (labels.tsv), an LMDB, or a folder of either (mixed)."""
    source = Path(source)
    if _is_lmdb(source):
        yield from _lmdb_images(source)
    elif (source / "labels.tsv").is_file():
        for name, path in _dataset_rows(source):
            yield name, path.read_bytes()
    elif source.is_dir():
        subs = sorted(p for p in source.iterdir() if p.is_dir() and ((p / "labels.tsv").is_file() or _is_lmdb(p)))
        if not subs:
            raise FileNotFoundError(f"{source}: no labels.tsv, LMDB or dataset sub-folders")
        yield from _round_robin([iter_crops(s) for s in subs])
    else:
        raise FileNotFoundError(f"{source}: not a dataset folder or LMDB")


def load_crops(source: Path, count: int) -> tuple[list[str], np.ndarray]:
    """The first ``count`` decodable crops of ``source`` as names and the network input [N,3,16,64]."""
    names, images = [], []
    for name, data in iter_crops(source):
        images.append(decode_image(data, name))
        names.append(name)
        if len(images) == count:
            break
    return names, batch_arrays(images, LR_SIZE)


# -------------------------------------------------------------------------------------------- parity
@dataclass
class ParityResult:
    count: int
    max_abs_diff: float
    max_sr_diff: float
    mismatches: list[tuple[str, str, str]] = field(default_factory=list)  # (crop, torch text, onnx text)
    tolerance: float = PARITY_TOLERANCE

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.tolerance and not self.mismatches

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        lines = [
            f"parity {verdict}: {self.count} crops, max |probs diff| = {self.max_abs_diff:.2e} "
            f"(limit {self.tolerance:.0e}), max |sr diff| = {self.max_sr_diff:.2e}, "
            f"decoded strings identical: {self.count - len(self.mismatches)}/{self.count}"
        ]
        lines += [f"  {name}: torch {a!r} vs onnx {b!r}" for name, a, b in self.mismatches[:10]]
        return "\n".join(lines)


def _chunk_sizes(total: int, batch_size: int) -> list[int]:
    """Batch sizes 1, 3, then ``batch_size``: parity is checked on several sizes of the dynamic axis."""
    sizes, left = [], total
    for size in (1, 3):
        if left > 0:
            sizes.append(min(size, left))
            left -= sizes[-1]
    while left > 0:
        sizes.append(min(batch_size, left))
        left -= sizes[-1]
    return sizes


def check_parity(
    model: Any, onnx_path: Path, names: Sequence[str], lr: np.ndarray, *, batch_size: int = 50,
    tolerance: float = PARITY_TOLERANCE,
) -> ParityResult:
    """Compare PyTorch ``model.infer`` and ONNX Runtime on the same inputs ``lr`` [N,3,16,64]."""
    import torch

    session = ort_session(onnx_path)
    decoder = str(getattr(model, "decoder", "ctc"))
    max_diff = max_sr = 0.0
    mismatches: list[tuple[str, str, str]] = []
    model.eval()
    bounds, start = [], 0
    for size in _chunk_sizes(len(lr), batch_size):
        bounds.append((start, start + size))
        start += size
    for start, stop in bounds:
        chunk = lr[start:stop]
        with torch.no_grad():
            t_probs, t_sr = (t.numpy() for t in model.infer(torch.from_numpy(chunk)))
        o_probs, o_sr = session.run(list(OUTPUT_NAMES), {INPUT_NAME: chunk})
        max_diff = max(max_diff, float(np.abs(t_probs - o_probs).max()))
        max_sr = max(max_sr, float(np.abs(t_sr - o_sr).max()))
        for i, (a, b) in enumerate(zip(decode(t_probs, decoder), decode(o_probs, decoder))):
            if a.text != b.text:
                mismatches.append((names[start + i], a.text, b.text))
    return ParityResult(len(lr), max_diff, max_sr, mismatches, tolerance)


# ------------------------------------------------------------------------------------------ TensorRT
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
    decoder = read_metadata(onnx_path).get("decoder", "ctc")
    sizes = sorted({settings.profile.min_batch, settings.profile.opt_batch, settings.profile.max_batch})
    if lr is None:
        lr = np.random.default_rng(0).random((max(sizes), 3, LR_SIZE[1], LR_SIZE[0]), dtype=np.float32)
    max_diff, same, total = 0.0, 0, 0
    for size in sizes:
        batch = np.resize(lr, (size, *lr.shape[1:])).astype(np.float32)
        expected = session.run(["probs"], {INPUT_NAME: batch})[0]
        got = run_engine(trt, plan, batch)["probs"]
        max_diff = max(max_diff, float(np.abs(expected - got).max()))
        same += sum(a.text == b.text for a, b in zip(decode(expected, decoder), decode(got, decoder)))
        total += size
    return EngineCheck(sizes, max_diff, same / total, settings.tolerance)
