"""Python entry point of the evaluation stage (used by the KFP component and the CLI).

    from lowres_ocr.evaluation.api import run_evaluation, kfp_metrics, gate, read_report
    report, paths = run_evaluation("model/lowres_ocr.pt", ["data/textzoom_easy", "data/iiit5k_test"], "out/",
                                   peers=["rapidocr"])
    for name, value in kfp_metrics(report).items():
        metrics.log_metric(name, value)          # a kfp dsl.Metrics artifact
    ok = gate(report, min_accuracy=80.0, baseline=read_report("deployed/report.json")).passed

The implementation lives in ``lowres_ocr.evaluation`` (sets, predictors, metrics, runner, report, gate)
and ``lowres_ocr.evaluation.peers``; ``report.json`` is described in docs/report-schema.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lowres_ocr.evaluation.gate import GateResult, gate, read_report
from lowres_ocr.evaluation.report import kfp_metrics, write_reports
from lowres_ocr.evaluation.runner import Options, Progress, evaluate_sets

__all__ = ["GateResult", "Options", "gate", "kfp_metrics", "load_predictor", "load_peers", "read_report", "run_evaluation"]


def load_predictor(weights: str | Path | None = None, triton_url: str | None = None, protocol: str = "http",
                   device: str = "auto", beam_width: int = 0) -> Any:
    """A checkpoint (.pt), an ONNX file (.onnx) or a Triton endpoint: exactly one of ``weights``/``triton_url``."""
    from lowres_ocr.evaluation.predictors import OnnxPredictor, TorchPredictor, TritonPredictor

    if (weights is None) == (triton_url is None):
        raise ValueError("give exactly one of --weights (a .pt checkpoint or an .onnx file) and --triton-url")
    if triton_url:
        if protocol not in ("http", "grpc"):
            raise ValueError(f"--protocol must be http or grpc, got {protocol!r}")
        return TritonPredictor(triton_url, protocol)
    path = Path(str(weights))
    if path.suffix == ".onnx":
        return OnnxPredictor(path)
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return TorchPredictor(path, device, beam_width)


def load_peers(names: Sequence[str]) -> tuple[list[Any], dict[str, str]]:
    """Peers by name (``"rapidocr,tesseract"`` items are split); missing ones come back in the skipped dict."""
    from lowres_ocr.evaluation.peers import PeerUnavailable, load_peer

    loaded, skipped = [], {}
    for name in [n.strip() for item in names for n in item.split(",") if n.strip()]:
        try:
            loaded.append(load_peer(name))
        except PeerUnavailable as err:
            skipped[name] = str(err)
    return loaded, skipped


def run_evaluation(weights: str | Path | None, data: Sequence[str], out: str | Path, *, peers: Sequence[str] = (),
                   triton_url: str | None = None, protocol: str = "http", device: str = "auto", beam_width: int = 0,
                   options: Options | None = None, command: str = "",
                   progress_factory: Callable[[int], Progress] | None = None) -> tuple[dict[str, Any], dict[str, Path]]:
    """Evaluate and write report.json / report.md / report.html / predictions/ under ``out``."""
    model = load_predictor(weights, triton_url, protocol, device, beam_width)
    peer_list, skipped = load_peers(peers)
    report, artifacts = evaluate_sets(model, list(data), peer_list, options, progress_factory, Path(out) / "predictions")
    report["peers_skipped"] = skipped
    paths = write_reports(report, artifacts, Path(out), command)
    report["command"] = command
    return report, paths
