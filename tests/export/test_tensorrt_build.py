"""TensorRT build logic without a GPU: profile shapes, builder config, parse errors, the skip path (exit 69).

A recording stand-in for the ``tensorrt`` module checks which TensorRT API calls the build makes; the real
build and the engine-vs-ONNX Runtime check run only where TensorRT and a GPU exist.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from lowres_ocr.export import tensorrt
from lowres_ocr.cli import app as cli_app


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple] = []


def fake_trt(version: str = "10.3.0", fast_fp16: bool = True, parse_ok: bool = True, build_ok: bool = True) -> SimpleNamespace:
    rec = Recorder()

    class Profile:
        def set_shape(self, name, mn, opt, mx):
            rec.calls.append(("set_shape", name, mn, opt, mx))

    class Config:
        def set_memory_pool_limit(self, pool, size):
            rec.calls.append(("pool", pool, size))

        def set_flag(self, flag):
            rec.calls.append(("flag", flag))

        def add_optimization_profile(self, profile):
            rec.calls.append(("add_profile", type(profile).__name__))

    class Network:
        num_inputs = 1

        def get_input(self, i):
            return SimpleNamespace(name="lr", shape=(-1, 3, 16, 64))

    class Builder:
        platform_has_fast_fp16 = fast_fp16

        def __init__(self, logger):
            pass

        def create_network(self, flags):
            rec.calls.append(("create_network", flags))
            return Network()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            return b"PLAN" if build_ok else None

    class OnnxParser:
        num_errors = 0 if parse_ok else 2

        def __init__(self, network, logger):
            pass

        def parse(self, data):
            rec.calls.append(("parse", len(data)))
            return parse_ok

        def get_error(self, i):
            return f"error {i}: unsupported node"

    class Logger:
        WARNING = 2

        def __init__(self, level):
            pass

    return SimpleNamespace(
        __version__=version, Logger=Logger, Builder=Builder, OnnxParser=OnnxParser,
        MemoryPoolType=SimpleNamespace(WORKSPACE="WORKSPACE"), BuilderFlag=SimpleNamespace(FP16="FP16"),
        NetworkDefinitionCreationFlag=SimpleNamespace(EXPLICIT_BATCH=0), recorder=rec,
    )


def test_profile_shapes() -> None:
    profile = tensorrt.BatchProfile(2, 8, 32)
    assert profile.shapes((3, 16, 64)) == ((2, 3, 16, 64), (8, 3, 16, 64), (32, 3, 16, 64))
    with pytest.raises(ValueError, match="only the batch axis"):
        profile.shapes((3, -1, 64))


@pytest.mark.parametrize("bad", [(0, 1, 1), (4, 2, 8), (1, 16, 8)])
def test_profile_rejects_disordered_batches(bad: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError, match="min <= opt <= max"):
        tensorrt.BatchProfile(*bad)


@pytest.mark.parametrize("fp16", [False, True])
def test_builder_config(fp16: bool, tmp_path: Path) -> None:
    trt = fake_trt()
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"x" * 10)
    settings = tensorrt.TrtSettings(tensorrt.BatchProfile(1, 16, 64), fp16=fp16, workspace_bytes=1 << 30)
    plan = tensorrt.build_engine(onnx_file, settings, trt)
    assert plan == b"PLAN"
    calls = trt.recorder.calls
    assert ("create_network", 0) in calls  # TensorRT 10: explicit batch only, no flag
    assert ("parse", 10) in calls
    assert ("pool", "WORKSPACE", 1 << 30) in calls
    assert ("set_shape", "lr", (1, 3, 16, 64), (16, 3, 16, 64), (64, 3, 16, 64)) in calls
    assert ("add_profile", "Profile") in calls
    assert (("flag", "FP16") in calls) is fp16
    assert settings.tolerance == (2e-2 if fp16 else 1e-3)


def test_tensorrt8_asks_for_explicit_batch(tmp_path: Path) -> None:
    trt = fake_trt(version="8.6.1")
    (tmp_path / "m.onnx").write_bytes(b"x")
    tensorrt.build_engine(tmp_path / "m.onnx", tensorrt.TrtSettings(), trt)
    assert ("create_network", 1) in trt.recorder.calls


def test_fp16_without_fast_fp16_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"x")
    with pytest.raises(RuntimeError, match="no fast FP16"):
        tensorrt.build_engine(tmp_path / "m.onnx", tensorrt.TrtSettings(fp16=True), fake_trt(fast_fp16=False))


def test_parse_and_build_failures_are_reported(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"x")
    with pytest.raises(RuntimeError, match="error 0: unsupported node; error 1"):
        tensorrt.build_engine(tmp_path / "m.onnx", tensorrt.TrtSettings(), fake_trt(parse_ok=False))
    with pytest.raises(RuntimeError, match="engine build failed"):
        tensorrt.build_engine(tmp_path / "m.onnx", tensorrt.TrtSettings(), fake_trt(build_ok=False))


def test_require_tensorrt_without_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import raises ImportError
    with pytest.raises(tensorrt.TensorRTUnavailable, match="TensorRT is not installed"):
        tensorrt.require_tensorrt()


def test_require_tensorrt_without_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setitem(sys.modules, "tensorrt", fake_trt())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(tensorrt.TensorRTUnavailable, match="no CUDA GPU"):
        tensorrt.require_tensorrt()


def test_cli_skips_with_exit_69_here(tiny_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No TensorRT package here: the command says why and exits 69; elsewhere the package is hidden."""
    try:
        tensorrt.require_tensorrt()
        monkeypatch.setitem(sys.modules, "tensorrt", None)  # a GPU machine with TensorRT: take the skip path anyway
    except tensorrt.TensorRTUnavailable:
        pass  # this machine: the real skip path, nothing patched
    out = tmp_path / "m.plan"
    result = CliRunner().invoke(cli_app, ["export", "tensorrt", "--onnx", str(tiny_onnx), "--out", str(out)])
    assert result.exit_code == tensorrt.EXIT_SKIPPED == 69, result.output
    assert "SKIPPED" in result.output and "TensorRT" in result.output and not out.exists()


def test_cli_rejects_bad_profile(tiny_onnx: Path, tmp_path: Path) -> None:
    args = ["export", "tensorrt", "--onnx", str(tiny_onnx), "--out", str(tmp_path / "m.plan"),
            "--min-batch", "8", "--opt-batch", "4", "--max-batch", "16"]
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 2 and "min <= opt <= max" in result.output
