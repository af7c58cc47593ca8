"""Benchmark evaluation: sets, predictors, metrics, the runner, reports and the deploy gate."""

from lowres_ocr.evaluation.gate import GateResult, gate, read_report
from lowres_ocr.evaluation.metrics import edit_distance, one_minus_ned, psnr, score, ssim
from lowres_ocr.evaluation.report import kfp_metrics, write_reports
from lowres_ocr.evaluation.runner import Options, evaluate_sets

__all__ = ["GateResult", "Options", "edit_distance", "evaluate_sets", "gate", "kfp_metrics", "one_minus_ned", "psnr",
           "read_report", "score", "ssim", "write_reports"]
