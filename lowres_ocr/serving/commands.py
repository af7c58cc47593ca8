"""``lowres-ocr serve repo|start|validate``: write the Triton repository, run a local tritonserver."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Triton model repository and a local tritonserver.")


@app.command("repo")
def repo_command(
    onnx_path: Path = typer.Option(..., "--onnx", exists=True, dir_okay=False, help="exported ONNX model"),
    out: Path = typer.Option(..., "--out", help="model repository folder to write"),
    plan: Path | None = typer.Option(None, "--plan", exists=True, dir_okay=False, help="TensorRT plan: recognizer uses tensorrt_plan"),
    local: bool = typer.Option(False, "--local", help="recognizer as a python-backend model running ONNX Runtime (local server)"),
    max_batch: int = typer.Option(64, "--max-batch", help="max_batch_size of every model (≤ the plan's max batch)"),
    queue_delay_us: int = typer.Option(500, "--queue-delay-us", help="dynamic batching max queue delay of the recognizer"),
    step_queue_delay_us: int = typer.Option(0, "--step-queue-delay-us", min=0,
                                            help="dynamic batching max queue delay of preprocess and decode"),
    recognizer_instances: int = typer.Option(1, "--recognizer-instances"),
    preprocess_instances: int = typer.Option(2, "--preprocess-instances"),
    gpu: bool = typer.Option(True, "--gpu/--cpu", help="production recognizer instances on KIND_GPU (default) or KIND_CPU"),
    local_threads: int = typer.Option(1, "--local-threads", help="ONNX Runtime intra-op threads per local recognizer instance"),
    page: bool = typer.Option(False, "--page/--no-page", help="also the whole-page endpoint lowres_ocr_page (detector + BLS to recognizer)"),
) -> None:
    """Write the ensemble `lowres_ocr` = preprocess → recognizer → decode (and with --page the page endpoint
    `lowres_ocr_page`) and validate every config.pbtxt."""
    from lowres_ocr.serving.configs import Scheduling
    from lowres_ocr.page.serving import PageOptions
    from lowres_ocr.serving.repository import RepositoryOptions, validate_repository, write_repository

    kind = "KIND_GPU" if gpu and not local else "KIND_CPU"
    preferred = tuple(b for b in (8, 16, 32) if b <= max_batch) if not local else ()
    options = RepositoryOptions(
        local=local,
        preprocess=Scheduling(max_batch_size=max_batch, instances=preprocess_instances, max_queue_delay_us=step_queue_delay_us),
        recognizer=Scheduling(max_batch_size=max_batch, max_queue_delay_us=queue_delay_us,
                              preferred_batch_sizes=preferred, instances=recognizer_instances, kind=kind),
        decode=Scheduling(max_batch_size=max_batch, max_queue_delay_us=step_queue_delay_us),
        local_threads=local_threads,
        page=PageOptions() if page else None,
    )
    try:
        write_repository(onnx_path, out, plan, options)
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    models = validate_repository(out)
    variant = "local (python+ONNX Runtime)" if local else ("tensorrt_plan" if plan else "onnxruntime_onnx")
    typer.echo(f"wrote {out}: {', '.join(sorted(models))}; recognizer = {variant}; configs parse as ModelConfig")


@app.command("validate")
def validate_command(repo: Path = typer.Option(..., "--repo", exists=True, file_okay=False)) -> None:
    """Parse every config.pbtxt of REPO into Triton's ModelConfig protobuf."""
    from lowres_ocr.serving.repository import validate_repository

    try:
        models = validate_repository(repo)
    except ValueError as err:
        typer.echo(f"invalid: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"valid: {', '.join(sorted(models))}")


@contextmanager
def _stop_requested() -> Iterator[threading.Event]:
    """An event set by SIGINT/SIGTERM while the block runs (previous handlers restored after).

    Installed before the server starts, so a signal that comes right after the "ready" line (or during start-up)
    still ends in a clean stop instead of killing this process and orphaning tritonserver.
    """
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@app.command("start")
def start_command(
    repo: Path = typer.Option(..., "--repo", exists=True, file_okay=False, help="model repository (serve repo --local)"),
    http_port: int = typer.Option(8000, "--http-port"),
    grpc_port: int = typer.Option(8001, "--grpc-port"),
    metrics_port: int = typer.Option(8002, "--metrics-port"),
    metrics: bool = typer.Option(False, "--metrics/--no-metrics", help="Prometheus metrics on 127.0.0.1:--metrics-port"),
    ready_timeout: float = typer.Option(90.0, "--ready-timeout", help="seconds to wait for readiness"),
    log: Path | None = typer.Option(None, "--log", help="server log file (default: a temporary file)"),
    max_restarts: int = typer.Option(3, "--max-restarts", min=0, help="restarts allowed within --restart-window"),
    restart_window: float = typer.Option(60.0, "--restart-window", help="seconds over which restarts are counted"),
) -> None:
    """Start tritonserver on 127.0.0.1, wait until ready, serve until Ctrl-C/SIGTERM, then stop cleanly.

    A server process that dies unexpectedly is restarted (a log line on stderr says so) up to --max-restarts
    times within --restart-window seconds; one more death stops with an error and exit code 1.
    """
    from lowres_ocr.serving.server import GaveUp, RestartPolicy, Supervisor, TritonNotAvailable, TritonServer, TritonStartError

    server = TritonServer(repo, http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port,
                          ready_timeout=ready_timeout, log_path=log, metrics=metrics)
    supervisor = Supervisor(server, RestartPolicy(max_restarts, restart_window), lambda line: typer.echo(line, err=True))
    code = 0
    with _stop_requested() as stop:
        try:
            server.start()
        except (TritonNotAvailable, TritonStartError) as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"tritonserver ready: HTTP {server.http_url}  gRPC {server.grpc_url}  (pid {server.process.pid}); "
                   "Ctrl-C stops")
        try:
            supervisor.run(stop)
        except GaveUp as err:
            typer.echo(f"error: {err}\n{server.log_tail()}", err=True)
            code = 1
    rc = server.stop()
    typer.echo(f"tritonserver stopped (rc={rc})")
    raise typer.Exit(code)


@app.command("smoke")
def smoke_command(
    http_url: str | None = typer.Option(None, "--http-url", help="HOST:PORT of the HTTP endpoint"),
    grpc_url: str | None = typer.Option(None, "--grpc-url", help="HOST:PORT of the gRPC endpoint"),
    data: Path = typer.Option(..., "--data", exists=True, help="crops: dataset folder, LMDB or folder of those"),
    count: int = typer.Option(20, "--count", min=1),
) -> None:
    """Recognize COUNT real crops over HTTP and gRPC, check a bad input is refused and the next request works."""
    import json

    from lowres_ocr.data.reader import iter_crops
    from lowres_ocr.serving.smoke import smoke_test

    images = [b for _, b in zip(range(count), (data_ for _, data_ in iter_crops(data)))]
    try:
        report = smoke_test(http_url, grpc_url, images)
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(report.as_dict(), indent=2))
    if not report.passed:
        raise typer.Exit(1)
