"""ONNX export of LowResOCR.infer: checker, metadata, dynamic batch, parity on ≥ 200 real crops, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from lowres_ocr.data import reader
from lowres_ocr.export import onnx_export, parity
from lowres_ocr.core.charset import ASCII, CHARSET, NUM_CLASSES
from lowres_ocr.core.geometry import SQUEEZE
from lowres_ocr.cli import app as cli_app
from lowres_ocr.network import load_model


def test_exported_graph_contract(tiny_onnx: Path) -> None:
    proto = onnx.load(str(tiny_onnx))
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == ["lr"]
    assert [o.name for o in proto.graph.output] == ["probs", "sr", "best", "best_prob"]
    lr_dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert lr_dims[0].dim_param == "batch" and [d.dim_value for d in lr_dims[1:]] == [3, 16, 64]
    meta = onnx_export.read_metadata(tiny_onnx)
    assert meta["charset"] == "\n".join(CHARSET) and meta["num_classes"] == str(NUM_CLASSES)
    assert onnx_export.model_settings(meta) == (ASCII, SQUEEZE)
    assert meta["input_size"] == "64x16" and meta["lowres_ocr_version"]
    assert '"recognizer"' in meta["model_config"] and meta["decoder"] == "ctc"


@pytest.mark.parametrize("batch", [1, 5, 33])
def test_dynamic_batch_axis(tiny_onnx: Path, batch: int) -> None:
    session = onnx_export.ort_session(tiny_onnx)
    lr = np.random.default_rng(batch).random((batch, 3, 16, 64), dtype=np.float32)
    probs, sr = session.run(["probs", "sr"], {"lr": lr})
    assert probs.shape[0] == batch and probs.shape[2] == NUM_CLASSES and sr.shape == (batch, 3, 32, 128)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-4)


def test_parity_on_real_crops(tiny_checkpoint: Path, tiny_onnx: Path, real_crops: Path) -> None:
    model, _ = load_model(tiny_checkpoint)
    names, lr = parity.load_crops(real_crops, 210)
    assert len(names) == 210 and lr.shape == (210, 3, 16, 64)
    result = parity.check_parity(model, tiny_onnx, names, lr)
    assert result.passed, result.summary()
    assert result.count == 210 and result.max_abs_diff <= 1e-3 and not result.mismatches


def test_parity_detects_a_wrong_graph(tiny_checkpoint: Path, tiny_onnx: Path, real_crops: Path, tmp_path: Path) -> None:
    """Perturb the classifier weights inside the ONNX file: the check must fail."""
    proto = onnx.load(str(tiny_onnx))
    biggest = max(proto.graph.initializer, key=lambda t: np.prod(t.dims) if len(t.dims) == 2 else 0)
    arr = onnx.numpy_helper.to_array(biggest).copy()
    arr += np.random.default_rng(0).normal(0, 0.5, arr.shape).astype(arr.dtype)
    biggest.CopyFrom(onnx.numpy_helper.from_array(arr, biggest.name))
    broken = tmp_path / "broken.onnx"
    onnx.save(proto, str(broken))
    model, _ = load_model(tiny_checkpoint)
    names, lr = parity.load_crops(real_crops, 50)
    result = parity.check_parity(model, broken, names, lr)
    assert not result.passed and result.max_abs_diff > 1e-3
    assert "FAIL" in result.summary()


def test_attention_decoder_export(real_crops: Path, tmp_path: Path) -> None:
    """decoder: attention (class 0 = end of sequence): metadata says so, parity uses attention greedy decoding."""
    import torch

    from lowres_ocr.network import build_model, tiny_config

    torch.manual_seed(1)
    model = build_model({**tiny_config(), "decoder": "attention"}).eval()
    path = onnx_export.export_onnx(model, tmp_path / "att.onnx", config=model.config)
    assert onnx_export.read_metadata(path)["decoder"] == "attention"
    names, lr = parity.load_crops(real_crops, 60)
    result = parity.check_parity(model, path, names, lr)
    assert result.passed, result.summary()


def test_chunk_sizes_cover_several_batch_sizes() -> None:
    assert parity._chunk_sizes(210, 50) == [1, 3, 50, 50, 50, 50, 6]
    assert parity._chunk_sizes(2, 50) == [1, 1]
    assert sum(parity._chunk_sizes(1000, 64)) == 1000


def test_crops_from_a_folder_of_sets_and_pairs(tmp_path: Path, real_crops: Path) -> None:
    """A parent folder mixes its dataset folders round-robin; pair folders yield the LR crop."""
    files = sorted((real_crops / "images").iterdir())[:4]
    words, pairs = tmp_path / "a_words", tmp_path / "b_pairs"
    (words / "images").mkdir(parents=True)
    (pairs / "lr").mkdir(parents=True)
    (words / "labels.tsv").write_text("".join(f"images/{f.name}\tx\n" for f in files[:2]))
    for f in files:
        (words / "images" / f.name).write_bytes(f.read_bytes())
    (pairs / "lr" / "p.png").write_bytes(files[3].read_bytes())
    (pairs / "labels.tsv").write_text("hr/p.png\tlr/p.png\ty\n")
    names = [n for n, _ in reader.iter_crops(tmp_path)]
    assert names == [f"a_words/images/{files[0].name}", "b_pairs/lr/p.png", f"a_words/images/{files[1].name}"]
    with pytest.raises(FileNotFoundError):
        list(reader.iter_crops(tmp_path / "a_words" / "images"))


def test_cli_export_onnx_with_parity(tiny_checkpoint: Path, real_crops: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    args = ["export", "onnx", "--weights", str(tiny_checkpoint), "--out", str(out), "--parity-data", str(real_crops)]
    result = CliRunner().invoke(cli_app, args + ["--parity-count", "200"])
    assert result.exit_code == 0, result.output
    assert "parity PASS: 200 crops" in result.output and "decoded strings identical: 200/200" in result.output
    assert out.is_file()
    too_many = CliRunner().invoke(cli_app, args + ["--parity-count", "500"])
    assert too_many.exit_code == 1 and "only 210 crops" in too_many.output


RELEASED = Path(__file__).resolve().parents[2] / "model" / "lowres_ocr.pt"


@pytest.mark.skipif(not RELEASED.is_file(), reason="model/lowres_ocr.pt (the released checkpoint) is not in this checkout")
def test_released_model_parity(real_crops: Path, tmp_path: Path) -> None:
    """The shipped checkpoint: export + parity on all 210 real crops, as the pipeline's export step runs it."""
    result = CliRunner().invoke(cli_app, ["export", "onnx", "--weights", str(RELEASED), "--out", str(tmp_path / "m.onnx"),
                                          "--parity-data", str(real_crops), "--parity-count", "210"])
    assert result.exit_code == 0, result.output
    assert "parity PASS: 210 crops" in result.output
