"""``lowres-ocr export onnx|tensorrt|release``: leave PyTorch, check the result, exit non-zero when it does not hold.

Exit codes: 0 ok; 1 parity/consistency check failed or bad input; 69 (EXIT_SKIPPED) TensorRT or a GPU is
missing, so the TensorRT step is skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="ONNX export (parity-checked) and TensorRT conversion.")


@app.command("onnx")
def onnx_command(
    weights: Path = typer.Option(..., "--weights", exists=True, dir_okay=False, help="lowres-ocr checkpoint (.pt)"),
    out: Path = typer.Option(..., "--out", help="ONNX file to write"),
    parity_data: Path | None = typer.Option(None, "--parity-data", exists=True, help="dataset folder, LMDB, or a folder of those"),
    parity_count: int = typer.Option(200, "--parity-count", min=1, help="crops for the parity check"),
    opset: int = typer.Option(17, "--opset"),
) -> None:
    """Export LowResOCR.infer (lr [B,3,H,W] of the model's input geometry → probs [B,T,classes], sr [B,3,2H,2W]); dynamic batch axis."""
    from lowres_ocr.export import onnx_export, parity
    from lowres_ocr.network import load_model

    model, payload = load_model(weights)
    path = onnx_export.export_onnx(model, out, config=payload.get("config"), opset=opset)
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB), onnx.checker passed, opset {opset}, dynamic batch axis")
    if parity_data is None:
        typer.echo("parity check skipped (no --parity-data)")
        return
    names, lr = parity.load_crops(parity_data, parity_count, model.geometry)
    if len(names) < parity_count:
        typer.echo(f"parity FAIL: only {len(names)} crops in {parity_data}, {parity_count} asked for", err=True)
        raise typer.Exit(1)
    _echo_check(parity.check_parity(model, path, names, lr))


@app.command("tensorrt")
def tensorrt_command(
    onnx_path: Path = typer.Option(..., "--onnx", exists=True, dir_okay=False, help="exported ONNX model"),
    out: Path = typer.Option(..., "--out", help="TensorRT plan to write"),
    fp16: bool = typer.Option(False, "--fp16", help="allow FP16 kernels (checked with tolerance 2e-2)"),
    min_batch: int = typer.Option(1, "--min-batch"),
    opt_batch: int = typer.Option(16, "--opt-batch"),
    max_batch: int = typer.Option(64, "--max-batch"),
    workspace_gib: float = typer.Option(2.0, "--workspace-gib"),
) -> None:
    """Build a TensorRT plan (one optimization profile over the batch axis) and check it against ONNX Runtime.

    Without the tensorrt package or a CUDA GPU: prints why and exits with code 69 (skipped).
    """
    from lowres_ocr.export import tensorrt

    try:
        settings = tensorrt.TrtSettings(tensorrt.BatchProfile(min_batch, opt_batch, max_batch), fp16, int(workspace_gib * (1 << 30)))
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    try:
        trt = tensorrt.require_tensorrt()
    except tensorrt.TensorRTUnavailable as err:
        typer.echo(f"SKIPPED (exit {tensorrt.EXIT_SKIPPED}): TensorRT conversion not possible here: {err}", err=True)
        raise typer.Exit(tensorrt.EXIT_SKIPPED) from None
    plan = tensorrt.build_engine(onnx_path, settings, trt)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(plan)
    typer.echo(f"wrote {out} ({len(plan) / 1e6:.2f} MB), TensorRT {trt.__version__}, profile {settings.profile}, fp16={fp16}")
    _echo_check(tensorrt.check_engine(trt, plan, onnx_path, settings))


def _echo_check(check: Any) -> None:
    """Print a parity check's summary; exit 1 when it failed."""
    typer.echo(check.summary())
    if not check.passed:
        raise typer.Exit(1)


@app.command("release")
def release_command(
    checkpoint: Path = typer.Argument(..., exists=True, dir_okay=False, help="a run's checkpoint, chosen on validation"),
    out: Path = typer.Option(Path("model/lowres_ocr.pt"), "--out", help="the released model"),
    command: str = typer.Option(..., "--command", help="the training command that made the checkpoint"),
    note: str = typer.Option("", "--note", help="why this checkpoint (e.g. its validation accuracy)"),
    snapshot: bool = typer.Option(False, "--snapshot", help="keep the training state but the optimizer's moments: "
                                  "a run continues from it with --set resume_from=OUT (needs --out)"),
    direct: bool = typer.Option(False, "--direct-read", help="drop an SR branch that adds nothing (residual_scale 0) "
                                "and read each crop straight at the recognizer's resolution (geometry x sr_scale)"),
    direct_width: int | None = typer.Option(None, "--read-width", min=8, help="with --direct-read: the maximum "
                                            "(padded) width at that height (default: the geometry's width x sr_scale)"),
    blend: float | None = typer.Option(None, "--blend-pretrained", min=0.0, max=1.0, help="release ALPHA x the "
                                       "checkpoint's recognizer weights + (1 - ALPHA) x the pretrained PP-OCR ones"),
    average_with: list[Path] = typer.Option([], "--average-with", exists=True, dir_okay=False, help="another "
                                            "checkpoint of the same run (repeatable): release the mean of all weights"),
) -> None:
    """Release a checkpoint: drop optimizer / scheduler / RNG state, record provenance, check it loads."""
    from lowres_ocr.export.release import release_checkpoint

    if snapshot and out == Path("model/lowres_ocr.pt"):
        typer.echo("release FAIL: --snapshot writes a training snapshot, not the released model: give --out", err=True)
        raise typer.Exit(2)
    try:
        info = release_checkpoint(checkpoint, out, {"command": command, "note": note}, snapshot=snapshot,
                                  direct=direct, direct_width=direct_width, blend=blend,
                                  average_with=list(average_with))
    except (ValueError, OSError) as err:
        typer.echo(f"release FAIL: {err}", err=True)
        raise typer.Exit(1) from None
    validation = f"best validation {info.get('best')}" if snapshot else f"validation {info.get('val')}"
    typer.echo(f"{'snapshot' if snapshot else 'released'} {out} ({out.stat().st_size / 1e6:.1f} MB): step {info.get('step')}, "
               f"{validation}, charset {'ASCII' if info.get('charset_symbols') is None else 'ppocr'}")
