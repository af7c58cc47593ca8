"""``lowres-ocr evaluate``: run the benchmark (``evaluate --weights W --data A B --out DIR``, same as
``evaluate run ...``) and the deploy gate (``evaluate gate --report NEW [--baseline OLD] --min-accuracy X``).

``evaluate`` is a group whose default command is ``run``: a first argument that is not a sub-command name
is routed to ``run``. ``--data`` and ``--peers`` take several values (``--data A B C``, ``--peers
rapidocr,tesseract`` or ``--peers rapidocr tesseract``).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any, NoReturn, Optional

import click
import typer
from typer.core import TyperGroup

from lowres_ocr.evaluation.end_to_end_run import e2e_command

MULTI_VALUE = ("--data", "--peers")


def expand_multi(args: list[str]) -> list[str]:
    """``--data A B --out D`` → ``--data A --data B --out D`` (values run up to the next option)."""
    out: list[str] = []
    current: str | None = None
    for arg in args:
        if arg.startswith("-"):
            current = arg if arg in MULTI_VALUE else None
            out.append(arg)
        elif current and out[-1] != current:
            out += [current, arg]
        else:
            out.append(arg)
    return out


class EvaluateGroup(TyperGroup):
    """A group that runs ``run`` when the first argument is not one of its sub-commands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        if args and args[0] == "run":
            args = ["run", *expand_multi(args[1:])]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=EvaluateGroup, add_completion=False, no_args_is_help=True,
                  help="Benchmark evaluation (default command: run) and the deploy gate.")


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command("run")
def run(
    data: list[str] = typer.Option(..., "--data", help="SET [SET...]: LMDB or dataset folder; PATH:labels_cs.tsv picks another labels file."),
    out: Path = typer.Option(..., "--out", help="Output folder for report.json / report.md / report.html / predictions/."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Checkpoint (.pt) or exported ONNX (.onnx)."),
    triton_url: Optional[str] = typer.Option(None, "--triton-url", help="HOST:PORT of a running Triton server."),
    protocol: str = typer.Option("http", "--protocol", help="Triton protocol: http | grpc."),
    peers: list[str] = typer.Option([], "--peers", help="rapidocr,tesseract"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda (checkpoints only)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    latency_samples: int = typer.Option(50, "--latency-samples", min=0, help="Batch-1 calls timed per set."),
    limit: int = typer.Option(0, "--limit", min=0, help="Only the first N samples of each set (0 = all)."),
    gallery: int = typer.Option(8, "--gallery", min=0, help="Crops per set in the HTML gallery."),
    beam_width: int = typer.Option(0, "--beam-width", min=0, help="Beam search width (checkpoints; 0 = greedy)."),
    modes: str = typer.Option("", "--modes", help="Only these modes where a predictor has them, e.g. sr,lr (default: all)."),
    protocol_row: bool = typer.Option(False, "--protocol-row", help="Pair sets also read the LR image squeezed to 16x64 "
                                      "first (the TextZoom protocol of the published methods), model and peers."),
) -> None:
    """Evaluate a model on every SET, peers side by side; the default command (evaluate --weights W --data A B --out D)."""
    from lowres_ocr.evaluation.runner import PROTOCOL_MODE, Options

    model, peer_list, skipped = _load_inputs(data, weights, triton_url, protocol, device, beam_width, peers)
    known = {"sr", "bicubic", "hr", "lr", PROTOCOL_MODE}
    only = tuple(m.strip() for m in modes.split(",") if m.strip())
    if set(only) - known:
        _fail(f"--modes: unknown mode(s) {', '.join(sorted(set(only) - known))} (known: {', '.join(sorted(known))})")
    opts = Options(batch_size=batch_size, latency_samples=latency_samples, gallery=gallery, failures=gallery, limit=limit,
                   modes=only, protocol_row=protocol_row or PROTOCOL_MODE in only)
    report, artifacts = _evaluate_with_progress(model, data, peer_list, opts, out)
    report["peers_skipped"] = skipped
    _write_and_show(report, artifacts, out)


def _load_inputs(data: list[str], weights: Optional[Path], triton_url: Optional[str], protocol: str, device: str,
                 beam_width: int, peers: list[str]) -> tuple[Any, list[Any], dict[str, str]]:
    """Check every SET, then load the model and the peers; a problem exits with its message."""
    from lowres_ocr.data.reader import SetError, load_set
    from lowres_ocr.evaluation.api import load_peers, load_predictor

    try:
        for spec in data:  # fail fast, before loading the model, on a missing or malformed SET
            load_set(spec)
    except SetError as err:
        _fail(str(err))
    try:
        model = load_predictor(weights, triton_url, protocol, device, beam_width)
    except ValueError as err:  # bad combination of options
        _fail(str(err))
    except (FileNotFoundError, ConnectionError, RuntimeError, KeyError) as err:
        _fail(f"cannot load the model: {err}")
    try:
        peer_list, skipped = load_peers(peers)
    except ValueError as err:
        _fail(str(err))
    for name, why in skipped.items():
        typer.echo(f"peer {name} skipped: {why}", err=True)
    return model, peer_list, skipped


def _evaluate_with_progress(model: Any, data: list[str], peer_list: list[Any], opts: Any, out: Path) -> tuple[dict[str, Any], Any]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from lowres_ocr.data.reader import SetError
    from lowres_ocr.evaluation.runner import evaluate_sets

    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console, transient=False) as bar:
        task = None

        def factory(total: int):
            nonlocal task
            task = bar.add_task("evaluating", total=total)

            def update(desc: str, n: int) -> None:
                bar.update(task, advance=n, description=desc)
            return update

        try:
            result = evaluate_sets(model, data, peer_list, opts, factory, out / "predictions")
        except SetError as err:
            _fail(str(err))
    return result


def _write_and_show(report: dict[str, Any], artifacts: Any, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from lowres_ocr.evaluation.report import summary_rows, write_reports

    command = "lowres-ocr evaluate " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 2 else ""
    paths = write_reports(report, artifacts, out, command)
    header, rows = summary_rows(report)
    table = Table(title=f"lowres-ocr evaluation: {report['model']['name']}")
    for h in header:
        table.add_column(h)
    for r in rows:
        table.add_row(*[c.replace("**", "") for c in r])
    Console(width=max(Console().width, 200)).print(table)
    typer.echo(f"average accuracy {report['average']['accuracy']:.2f}% over {report['average']['n']} samples; "
               f"reports: {paths['json']}, {paths['md']}, {paths['html']}")


@app.command("gate")
def gate_command(
    report: Path = typer.Option(..., "--report", help="report.json of the new model."),
    min_accuracy: float = typer.Option(..., "--min-accuracy", help="Threshold on the weighted average accuracy (%)."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="report.json of the deployed model (optional)."),
    tolerance: float = typer.Option(0.0, "--tolerance", min=0.0, help="Points the new model may lose to the baseline."),
) -> None:
    """Exit 0 when the new model may be deployed, 1 (with the reason) when it may not, 2 on unreadable reports."""
    from lowres_ocr.evaluation.gate import ReportError, gate, read_report

    try:
        new = read_report(report)
        old = read_report(baseline) if baseline else None
    except ReportError as err:
        _fail(str(err))
    result = gate(new, min_accuracy, old, tolerance)
    if result.passed:
        typer.echo(f"gate passed: {result.summary}")
        return
    typer.echo(f"gate failed: {'; '.join(result.reasons)} [{result.summary}]", err=True)
    raise typer.Exit(1)


app.command("e2e")(e2e_command)
