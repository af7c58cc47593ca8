"""Write (and validate) the Triton model repository for an exported model.

Layout::

    REPO/lowres_ocr/{config.pbtxt, 1/.gitkeep}          ensemble (the empty version dir is required)
    REPO/preprocess/{config.pbtxt, 1/model.py, 1/vendor/lowres_ocr/...}
    REPO/recognizer/{config.pbtxt, 1/model.onnx | 1/model.plan [, 1/model.py for --local]}
    REPO/decode/{config.pbtxt, 1/model.py, 1/vendor/lowres_ocr/...}

The python-backend models import the pure numpy/PIL helpers (preprocess, image_input, charset,
decoding) from a copy written next to their model.py, so a production Triton image needs numpy and
pillow in its python but not this package, and the served code is exactly the code that was tested.
"""

from __future__ import annotations

import importlib.resources
import inspect
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import onnx

import lowres_ocr
from lowres_ocr.core import charset as charset_module
from lowres_ocr.core.charset import ASCII, Charset
from lowres_ocr.core.geometry import SQUEEZE, Geometry
from lowres_ocr.export.onnx_export import model_settings
from lowres_ocr.page.serving import PageOptions, write_page_models
from lowres_ocr.core import decoding
from lowres_ocr.core import geometry, images
from lowres_ocr.serving import configs, image_input
from lowres_ocr.serving.configs import Scheduling
from lowres_ocr.serving.image_input import ImageLimits

#: Modules copied into ``1/vendor/`` of the python-backend models (all numpy/PIL only).
VENDORED = {
    "lowres_ocr/core/charset.py": charset_module,
    "lowres_ocr/core/images.py": images,
    "lowres_ocr/core/geometry.py": geometry,
    "lowres_ocr/core/decoding.py": decoding,
    "lowres_ocr/serving/image_input.py": image_input,
}


@dataclass(frozen=True)
class OnnxSignature:
    """Shapes (without the batch axis) and metadata of an exported recognizer."""

    lr_shape: tuple[int, int, int]
    probs_shape: tuple[int, int]
    sr_shape: tuple[int, int, int] | None
    metadata: dict[str, str] = field(default_factory=dict)
    charset: Charset = ASCII
    geometry: Geometry = SQUEEZE
    best: bool = False  # the graph has the best-class outputs (best, best_prob): the ensemble decodes from those


@dataclass(frozen=True)
class RepositoryOptions:
    local: bool = False
    limits: ImageLimits = ImageLimits()
    preprocess: Scheduling = Scheduling(instances=2)
    recognizer: Scheduling = Scheduling(preferred_batch_sizes=(), max_queue_delay_us=500)
    decode: Scheduling = Scheduling()
    local_threads: int = 1
    page: PageOptions | None = None  # also write the page endpoint (models detector, lowres_ocr_page)


def _dims(value_info: onnx.ValueInfoProto) -> tuple[int, ...]:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims)[1:]


def read_signature(onnx_path: Path) -> OnnxSignature:
    """Read input/output shapes and metadata from the ONNX file; checks the I/O contract (CONTRACTS.md)."""
    model = onnx.load(str(onnx_path), load_external_data=False)
    inputs = {i.name: i for i in model.graph.input}
    outputs = {o.name: o for o in model.graph.output}
    if "lr" not in inputs or "probs" not in outputs:
        raise ValueError(f"{onnx_path}: expected input 'lr' and output 'probs', got {list(inputs)} -> {list(outputs)}")
    lr_shape = _dims(inputs["lr"])
    probs_shape = _dims(outputs["probs"])
    sr_shape = _dims(outputs["sr"]) if "sr" in outputs else None
    if len(lr_shape) != 3 or len(probs_shape) != 2:
        raise ValueError(f"{onnx_path}: lr must be [B,3,H,W] and probs [B,T,C]; got {lr_shape}, {probs_shape}")
    metadata = {p.key: p.value for p in model.metadata_props}
    charset, geometry = model_settings(metadata)
    if probs_shape[1] != charset.num_classes:
        raise ValueError(f"{onnx_path}: probs has {probs_shape[1]} classes, its {charset.name} charset needs {charset.num_classes}")
    if tuple(lr_shape) != geometry.input_shape():
        raise ValueError(f"{onnx_path}: input lr is {lr_shape}, its {geometry.kind} geometry needs {geometry.input_shape()}")
    best = "best" in outputs and "best_prob" in outputs
    return OnnxSignature(lr_shape, probs_shape, sr_shape, metadata, charset, geometry, best)  # type: ignore[arg-type]


def _template(name: str) -> str:
    return importlib.resources.files("lowres_ocr.serving").joinpath("templates", name).read_text(encoding="utf-8")


def write_vendor(version_dir: Path) -> None:
    """Copy the numpy-only helpers under ``version_dir/vendor/`` as a minimal ``lowres_ocr`` package."""
    root = version_dir / "vendor"
    for rel, module in VENDORED.items():
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(inspect.getsource(module), encoding="utf-8")
    note = f'"""Vendored subset of lowres_ocr {lowres_ocr.__version__} (numpy/PIL helpers for the Triton python backend)."""\n'
    (root / "lowres_ocr/__init__.py").write_text(note + f'__version__ = "{lowres_ocr.__version__}"\n', encoding="utf-8")
    (root / "lowres_ocr/core/__init__.py").write_text('"""Vendored: numpy/PIL helpers."""\n', encoding="utf-8")
    (root / "lowres_ocr/serving/__init__.py").write_text('"""Vendored: image_input only."""\n', encoding="utf-8")


def _write_model(repo: Path, name: str, config: str) -> Path:
    model_dir = repo / name
    version_dir = model_dir / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "config.pbtxt").write_text(config, encoding="utf-8")
    return version_dir


def write_repository(
    onnx_path: Path, out: Path, plan: Path | None = None, options: RepositoryOptions = RepositoryOptions()
) -> Path:
    """Write the ensemble repository to ``out`` (replacing the four model folders there); returns ``out``."""
    if options.local and plan is not None:
        raise ValueError("--local runs the recognizer with ONNX Runtime in the python backend; a TensorRT plan needs the production server")
    sig = read_signature(onnx_path)
    out.mkdir(parents=True, exist_ok=True)
    for name in (configs.ENSEMBLE, configs.PREPROCESS, configs.RECOGNIZER, configs.DECODE, configs.DETECTOR, configs.PAGE):
        shutil.rmtree(out / name, ignore_errors=True)

    pre = _write_model(out, configs.PREPROCESS, configs.preprocess_config(
        options.limits, sig.lr_shape, options.preprocess, image_input.geometry_parameters(sig.geometry)))
    (pre / "model.py").write_text(_template("preprocess_model.py"), encoding="utf-8")
    write_vendor(pre)

    if options.local:
        backend: configs.RecognizerBackend = "python"
        params = {"onnx_file": "model.onnx", "intra_op_threads": str(options.local_threads)}
    else:
        backend, params = ("tensorrt" if plan is not None else "onnxruntime"), {}
    rec = _write_model(
        out, configs.RECOGNIZER,
        configs.recognizer_config(backend, sig.lr_shape, sig.probs_shape, sig.sr_shape, options.recognizer, params,
                                  best=sig.best),
    )
    if plan is not None:
        shutil.copyfile(plan, rec / "model.plan")
    else:
        shutil.copyfile(onnx_path, rec / "model.onnx")
    if options.local:
        (rec / "model.py").write_text(_template("recognizer_model.py"), encoding="utf-8")

    decoder = sig.metadata.get("decoder", "ctc")
    if decoder not in ("ctc", "attention"):
        raise ValueError(f"{onnx_path}: unknown decoder {decoder!r} in the model metadata")
    dec = _write_model(out, configs.DECODE, configs.decode_config(sig.probs_shape, options.decode, decoder, sig.charset.name,
                                                                    best=sig.best))
    (dec / "charset.txt").write_text(sig.charset.to_text(), encoding="utf-8")
    (dec / "model.py").write_text(_template("decode_model.py"), encoding="utf-8")
    write_vendor(dec)

    max_batch = min(s.max_batch_size for s in (options.preprocess, options.recognizer, options.decode))
    ens = _write_model(out, configs.ENSEMBLE, configs.ensemble_config(max_batch, best=sig.best))
    (ens / ".gitkeep").write_text("", encoding="utf-8")
    if options.page is not None:
        write_page_models(out, sig, options, decoder)
    validate_repository(out)
    return out


def validate_repository(repo: Path) -> dict[str, object]:
    """Parse every ``*/config.pbtxt`` into Triton's ModelConfig protobuf (strict: field names, enums).

    Also checks that the config name matches its folder and that a version folder ``1/`` exists.
    Returns {model name: ModelConfig}; raises ValueError naming the file on any problem.
    """
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    parsed: dict[str, object] = {}
    for path in sorted(repo.glob("*/config.pbtxt")):
        try:
            cfg = text_format.Parse(path.read_text(encoding="utf-8"), model_config_pb2.ModelConfig())
        except text_format.ParseError as err:
            raise ValueError(f"{path}: {err}") from None
        if cfg.name != path.parent.name:
            raise ValueError(f"{path}: name {cfg.name!r} differs from its folder {path.parent.name!r}")
        if not (path.parent / "1").is_dir():
            raise ValueError(f"{path.parent}: missing version folder 1/")
        parsed[cfg.name] = cfg
    if not parsed:
        raise ValueError(f"{repo}: no */config.pbtxt found")
    return parsed
