"""The deployed model measured by the same code: a local tritonserver (127.0.0.1) serving the tiny model's
export, evaluated over HTTP and gRPC; its predictions equal the ONNX file's."""

from __future__ import annotations

from pathlib import Path

import pytest

from lowres_ocr.evaluation.runner import Options, evaluate_sets

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_triton_endpoint_matches_onnx(tiny_checkpoint: Path, real_words_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("pytriton")
    from lowres_ocr.evaluation.predictors import OnnxPredictor, TritonPredictor
    from lowres_ocr.export.onnx_export import export_onnx
    from lowres_ocr.network import load_model
    from lowres_ocr.serving.repository import RepositoryOptions, write_repository
    from lowres_ocr.serving.server import TritonServer

    model, _ = load_model(tiny_checkpoint)
    onnx_path = export_onnx(model, tmp_path / "model.onnx", config=model.config)
    repo = write_repository(onnx_path, tmp_path / "repo", options=RepositoryOptions(local=True))
    opts = Options(batch_size=8, latency_samples=3, limit=24)
    reference, _ = evaluate_sets(OnnxPredictor(onnx_path), [str(real_words_dir)], opts=opts, predictions_dir=tmp_path / "onnx")
    with TritonServer(repo, ready_timeout=180) as server:
        for protocol, url in (("http", server.http_url), ("grpc", server.grpc_url)):
            predictor = TritonPredictor(url, protocol)
            try:
                report, _ = evaluate_sets(predictor, [str(real_words_dir)], opts=opts, predictions_dir=tmp_path / protocol)
            finally:
                predictor.close()
            assert report["model"]["source"].startswith(f"{protocol}://127.0.0.1:")
            assert report["sets"][0]["model"]["speed"]["latency_samples"] == 3
            assert (tmp_path / protocol / "real_crops.tsv").read_text() == (tmp_path / "onnx" / "real_crops.tsv").read_text()
            assert report["average"]["accuracy"] == reference["average"]["accuracy"]
    with pytest.raises(ConnectionError, match="not reachable"):
        TritonPredictor(server.http_url, "http")
