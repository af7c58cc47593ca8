"""The model repository writer: every config.pbtxt parses as Triton's ModelConfig; layout; vendored helpers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2
from typer.testing import CliRunner

from lowres_ocr.cli import app as cli_app
from lowres_ocr.serving import configs
from lowres_ocr.serving.configs import Scheduling
from lowres_ocr.serving.repository import RepositoryOptions, read_signature, validate_repository, write_repository

TYPE = model_config_pb2.DataType
KIND = model_config_pb2.ModelInstanceGroup.Kind


def _parse(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from lowres_ocr.export.onnx_export import export_onnx
    from lowres_ocr.network import build_model, tiny_config

    torch.manual_seed(0)
    return export_onnx(build_model(tiny_config()).eval(), tmp_path_factory.mktemp("m") / "m.onnx")


def test_signature(onnx_file: Path) -> None:
    sig = read_signature(onnx_file)
    assert sig.lr_shape == (3, 16, 64) and sig.probs_shape[1] == 95 and sig.sr_shape == (3, 32, 128)


def test_production_onnxruntime_repository(onnx_file: Path, tmp_path: Path) -> None:
    options = RepositoryOptions(recognizer=Scheduling(64, 1000, (8, 16, 32), instances=2, kind="KIND_GPU"))
    repo = write_repository(onnx_file, tmp_path / "repo", options=options)
    models = validate_repository(repo)
    assert sorted(models) == ["decode", "lowres_ocr", "preprocess", "recognizer"]
    rec = _parse(repo / "recognizer" / "config.pbtxt")
    assert rec.platform == "onnxruntime_onnx" and rec.max_batch_size == 64
    assert list(rec.dynamic_batching.preferred_batch_size) == [8, 16, 32]
    assert rec.dynamic_batching.max_queue_delay_microseconds == 1000
    assert rec.instance_group[0].kind == KIND.KIND_GPU and rec.instance_group[0].count == 2
    assert [(i.name, i.data_type, list(i.dims)) for i in rec.input] == [("lr", TYPE.TYPE_FP32, [3, 16, 64])]
    assert [o.name for o in rec.output] == ["probs", "sr", "best", "best_prob"] and list(rec.output[0].dims)[1] == 95
    assert (repo / "recognizer/1/model.onnx").is_file() and not (repo / "recognizer/1/model.py").exists()

    ens = _parse(repo / "lowres_ocr" / "config.pbtxt")
    assert ens.platform == "ensemble"
    assert [(i.name, i.data_type) for i in ens.input] == [("image", TYPE.TYPE_STRING)]
    assert [(o.name, o.data_type) for o in ens.output] == [("text", TYPE.TYPE_STRING), ("confidence", TYPE.TYPE_FP32)]
    assert [s.model_name for s in ens.ensemble_scheduling.step] == ["preprocess", "recognizer", "decode"]
    # the decoder gets the best class per step and its probability, not every class's probability
    moved = {s.model_name: (dict(s.input_map), dict(s.output_map)) for s in ens.ensemble_scheduling.step}
    assert moved["recognizer"][1] == {"best": "best_tensor", "best_prob": "best_prob_tensor"}
    assert moved["decode"][0] == {"best": "best_tensor", "best_prob": "best_prob_tensor"}
    assert (repo / "lowres_ocr" / "1").is_dir() and not any(p.suffix for p in (repo / "lowres_ocr" / "1").iterdir() if p.name != ".gitkeep")

    pre = _parse(repo / "preprocess" / "config.pbtxt")
    assert pre.backend == "python" and pre.output[0].name == "lr" and list(pre.output[0].dims) == [3, 16, 64]
    assert pre.parameters["max_side"].string_value == "3072" and pre.parameters["min_side"].string_value == "4"
    dec = _parse(repo / "decode" / "config.pbtxt")
    assert [o.name for o in dec.output] == ["text", "confidence"]
    assert [(i.name, i.data_type, list(i.dims)) for i in dec.input] == [("best", TYPE.TYPE_INT32, [rec.output[0].dims[0]]),
                                                                        ("best_prob", TYPE.TYPE_FP32, [rec.output[0].dims[0]])]
    assert dec.parameters["decoder"].string_value == "ctc"


def test_decoder_comes_from_the_model_metadata(onnx_file: Path, tmp_path: Path) -> None:
    import onnx

    proto = onnx.load(str(onnx_file))
    for prop in proto.metadata_props:
        if prop.key == "decoder":
            prop.value = "attention"
    onnx.save(proto, str(tmp_path / "att.onnx"))
    repo = write_repository(tmp_path / "att.onnx", tmp_path / "repo")
    assert _parse(repo / "decode" / "config.pbtxt").parameters["decoder"].string_value == "attention"
    for prop in proto.metadata_props:
        if prop.key == "decoder":
            prop.value = "beam"
    onnx.save(proto, str(tmp_path / "bad.onnx"))
    with pytest.raises(ValueError, match="unknown decoder 'beam'"):
        write_repository(tmp_path / "bad.onnx", tmp_path / "repo2")


def test_tensorrt_repository(onnx_file: Path, tmp_path: Path) -> None:
    plan = tmp_path / "model.plan"
    plan.write_bytes(b"engine bytes")
    repo = write_repository(onnx_file, tmp_path / "repo", plan=plan)
    rec = _parse(repo / "recognizer" / "config.pbtxt")
    assert rec.platform == "tensorrt_plan" and rec.default_model_filename == "model.plan"
    assert (repo / "recognizer/1/model.plan").read_bytes() == b"engine bytes"
    assert not (repo / "recognizer/1/model.onnx").exists()


def test_local_repository_and_plan_conflict(onnx_file: Path, tmp_path: Path) -> None:
    repo = write_repository(onnx_file, tmp_path / "repo", options=RepositoryOptions(local=True, local_threads=2))
    rec = _parse(repo / "recognizer" / "config.pbtxt")
    assert rec.backend == "python" and rec.parameters["intra_op_threads"].string_value == "2"
    assert (repo / "recognizer/1/model.py").is_file() and (repo / "recognizer/1/model.onnx").is_file()
    plan = tmp_path / "x.plan"
    plan.write_bytes(b"x")
    with pytest.raises(ValueError, match="TensorRT plan needs the production server"):
        write_repository(onnx_file, tmp_path / "r2", plan=plan, options=RepositoryOptions(local=True))


def test_vendored_helpers_import_without_the_package(onnx_file: Path, tmp_path: Path) -> None:
    """The python-backend models import the copied helpers, not an installed lowres_ocr (isolated interpreter)."""
    repo = write_repository(onnx_file, tmp_path / "repo", options=RepositoryOptions(local=True))
    for model in ("preprocess", "decode"):
        vendor = repo / model / "1" / "vendor"
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]);"
            "import lowres_ocr.serving.image_input as ii, lowres_ocr.core.decoding as d;"
            "assert ii.__file__.startswith(sys.argv[1]) and d.__file__.startswith(sys.argv[1]), ii.__file__;"
            "print(ii.MAX_SIDE)"
        )
        out = subprocess.run([sys.executable, "-I", "-c", code, str(vendor)], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "3072"


def test_validation_reports_bad_configs(tmp_path: Path) -> None:
    bad = tmp_path / "repo" / "m"
    (bad / "1").mkdir(parents=True)
    (bad / "config.pbtxt").write_text('name: "m"\nmax_batchsize: 4\n')
    with pytest.raises(ValueError, match="max_batchsize"):
        validate_repository(tmp_path / "repo")
    (bad / "config.pbtxt").write_text('name: "other"\n')
    with pytest.raises(ValueError, match="differs from its folder"):
        validate_repository(tmp_path / "repo")
    (bad / "config.pbtxt").write_text('name: "m"\ninput [ { name: "x" data_type: TYPE_FLOAT32 dims: [1] } ]\n')
    with pytest.raises(ValueError, match="TYPE_FLOAT32"):
        validate_repository(tmp_path / "repo")


def test_scheduling_validation() -> None:
    with pytest.raises(ValueError):
        Scheduling(max_batch_size=8, preferred_batch_sizes=(16,))
    with pytest.raises(ValueError):
        Scheduling(instances=0)
    text = configs.recognizer_config("onnxruntime", (3, 16, 64), (32, 95), None, Scheduling())
    assert "sr" not in text and text_format.Parse(text, model_config_pb2.ModelConfig()).name == "recognizer"


def test_cli_repo_and_validate(onnx_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "repo"
    result = CliRunner().invoke(cli_app, ["serve", "repo", "--onnx", str(onnx_file), "--out", str(out), "--cpu", "--recognizer-instances", "3",
                                          "--step-queue-delay-us", "1000"])
    assert result.exit_code == 0, result.output
    rec = _parse(out / "recognizer" / "config.pbtxt")
    assert rec.instance_group[0].kind == KIND.KIND_CPU and rec.instance_group[0].count == 3
    assert rec.dynamic_batching.max_queue_delay_microseconds == 500
    for step in ("preprocess", "decode"):
        assert _parse(out / step / "config.pbtxt").dynamic_batching.max_queue_delay_microseconds == 1000
    assert CliRunner().invoke(cli_app, ["serve", "validate", "--repo", str(out)]).exit_code == 0
    (out / "decode" / "config.pbtxt").write_text("nonsense: 1\n")
    result = CliRunner().invoke(cli_app, ["serve", "validate", "--repo", str(out)])
    assert result.exit_code == 1 and "nonsense" in result.output


def test_cli_repo_with_the_page_endpoint(onnx_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    result = CliRunner().invoke(cli_app, ["serve", "repo", "--onnx", str(onnx_file), "--out", str(out), "--local", "--page"])
    assert result.exit_code == 0, result.output
    assert {"detector", "lowres_ocr_page"} <= {p.name for p in out.iterdir()}
    assert _parse(out / "lowres_ocr_page" / "config.pbtxt").backend == "python"
    plain = tmp_path / "plain"
    assert CliRunner().invoke(cli_app, ["serve", "repo", "--onnx", str(onnx_file), "--out", str(plain), "--local"]).exit_code == 0
    assert not (plain / "lowres_ocr_page").exists()
