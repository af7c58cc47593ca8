"""``lowres-ocr pipeline``: compile the Kubeflow pipeline, run it on this machine (kfp.local), or submit it.

``run-local`` is the project's main job: the whole ``train_deploy`` pipeline through kfp.local's
SubprocessRunner, with caching, ending with a real local tritonserver answering over HTTP and gRPC.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)

PIPELINE_FILE = Path("pipelines") / "train_deploy.py"


def _root() -> Path:
    from lowres_ocr.pipeline.workspace import project_root

    return project_root()


def load_pipeline(root: Path) -> Any:
    """Import ``pipelines/train_deploy.py`` of the checkout and return its ``train_deploy`` pipeline."""
    path = root / PIPELINE_FILE
    spec = importlib.util.spec_from_file_location("lowres_ocr_train_deploy", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.train_deploy


def compile_pipeline(root: Path, output: Path) -> Path:
    from kfp import compiler

    compiler.Compiler().compile(load_pipeline(root), str(output))
    return output


@app.command("compile")
def compile_command(output: Path = typer.Option(Path("train_deploy.yaml"), "--output", "-o")) -> None:
    """Compile to a pipeline package (same bytes as ``kfp dsl compile --py pipelines/train_deploy.py``)."""
    t0 = time.perf_counter()
    path = compile_pipeline(_root(), output)
    typer.echo(f"wrote {path} ({path.stat().st_size} bytes) in {time.perf_counter() - t0:.1f} s")


class _CacheHits(logging.Handler):
    """Collects kfp.local's "Task X cache hit" records (logged at INFO on the root logger, hidden by default)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.tasks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if "cache hit" in msg:
            self.tasks.append(msg.split()[1])


def _local_arguments(preset: str, steps: int, nproc: int, min_accuracy: float, eval_limit: int, eval_modes: str,
                     init_from: str) -> dict[str, Any]:
    return {"preset": preset, "train_steps": steps, "nproc_per_node": nproc, "nnodes": 1, "launcher": "local", "gpus": 0,
            "min_accuracy": min_accuracy, "eval_limit": eval_limit, "eval_modes": eval_modes, "init_from": init_from,
            "deploy_target": "local"}


@app.command("run-local")
def run_local(
    preset: str = typer.Option("finetune", help="training config: finetune (small learning rates, from --init-from), small, default, gpu, or a YAML file"),
    steps: int = typer.Option(40, help="training steps of the short run (0 = the preset's)"),
    nproc: int = typer.Option(2, "--nproc-per-node", help="torchrun processes (CPU, gloo)"),
    init_from: Optional[str] = typer.Option(None, help="checkpoint to fine-tune (default: the shipped model/lowres_ocr.pt)"),
    min_accuracy: float = typer.Option(60.0, help="deploy gate: weighted average word accuracy (%) on the eval sets"),
    eval_limit: int = typer.Option(200, help="first N samples of each evaluation set (0 = all)"),
    eval_modes: str = typer.Option("sr", help="evaluation modes (sr: the served path; pairs also run hr/bicubic with \"\")"),
    pipeline_root: Path = typer.Option(Path("local_outputs"), help="where kfp.local writes artifacts (and its cache)"),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="reuse outputs of unchanged steps from earlier runs"),
    keep_serving: bool = typer.Option(False, "--keep-serving", help="leave tritonserver running after the run"),
) -> None:
    """Run the whole pipeline on this machine: dvc pull → LMDB → torchrun (2 procs) → evaluate + gate → ONNX →
    Triton repository → local tritonserver → smoke test over HTTP and gRPC."""
    from kfp import local

    from lowres_ocr.serving.steps import SERVING_STATE_ENV, stop_local

    root = _root()
    os.chdir(root)
    os.environ["LOWRES_OCR_ROOT"] = str(root)
    if init_from is None:
        shipped = root / "model" / "lowres_ocr.pt"
        init_from = str(shipped) if shipped.is_file() else ""
        if not init_from:
            typer.echo(f"note: {shipped} is not in this checkout; training starts from the preset's initialisation", err=True)
    state = (root / pipeline_root).resolve() / "serving" / "endpoint.json"
    state.unlink(missing_ok=True)
    state.with_name("smoke.json").unlink(missing_ok=True)
    os.environ[SERVING_STATE_ENV] = str(state)
    typer.echo("Kubernetes settings (PVC, Secret env, node selector, tolerations, GPU limits) have no effect in kfp.local "
               "and are ignored here; no cluster is contacted.")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root / pipeline_root),
               enable_caching=cache, raise_on_error=True)
    pipeline = load_pipeline(root)
    hits = _CacheHits()
    root_logger = logging.getLogger()
    root_logger.addHandler(hits)
    if root_logger.level > logging.INFO or root_logger.level == logging.NOTSET:
        root_logger.setLevel(logging.INFO)
    t0 = time.perf_counter()
    args = _local_arguments(preset, steps, nproc, min_accuracy, eval_limit, eval_modes, init_from)
    try:
        result = pipeline(**args)
    except BaseException:
        if state.is_file() and not keep_serving:
            stop_local(json.loads(state.read_text()))
        raise
    wall = time.perf_counter() - t0
    outs = result.outputs
    metrics = outs["metrics"].metadata
    typer.echo(f"\npipeline finished in {wall:.0f} s (kfp.local, cache {'on' if cache else 'off'}); "
               f"reused from the cache: {', '.join(hits.tasks) if hits.tasks else 'nothing'}")
    for name in ("data", "lmdb", "model", "report", "predictions"):
        typer.echo(f"  {name:<12} {outs[name].path}")
    typer.echo(f"  {'report.json':<12} {outs['predictions'].path}/report/report.json")
    typer.echo(f"  evaluation: accuracy {metrics.get('accuracy', float('nan')):.2f}% on {int(metrics.get('samples', 0))} "
               f"samples, gate {'passed' if metrics.get('gate_passed') else 'FAILED (not deployed)'}")
    if not state.is_file():
        typer.echo("no server was started (the deploy gate did not pass)")
        raise typer.Exit(1 if not metrics.get("gate_passed") else 0)
    info = json.loads(state.read_text())
    smoke = json.loads(state.with_name("smoke.json").read_text())
    typer.echo(f"  {'triton repo':<12} {info['repo']}  (ONNX: {info['repo']}/recognizer/1/model.onnx)")
    typer.echo(f"  {'server log':<12} {info['log']}")
    for proto in smoke["protocols"]:
        typer.echo(f"  smoke {proto['protocol']:<5} {proto['url']}: {proto['matched']}/{proto['predicted']} answers equal the "
                   f"evaluation's predictions; bad input -> {proto['bad_input_status']}")
    typer.echo(f"\nquery it:\n  lowres-ocr infer --url {info['http_url']} CROP.png\n"
               f"  lowres-ocr infer --url {info['grpc_url']} --protocol grpc CROP.png\n"
               f"  curl -s http://{info['http_url']}/v2/models/lowres_ocr")
    if keep_serving:
        typer.echo(f"tritonserver keeps running (pid {info['pid']}); stop it with: kill -TERM -{info['pid']}")
    else:
        stop_local(info)
        typer.echo(f"tritonserver (pid {info['pid']}) stopped; --keep-serving leaves it running")


@app.command("submit")
def submit_command(
    host: str = typer.Option(..., "--host", help="Kubeflow Pipelines API endpoint, e.g. https://kfp.example.com/pipeline"),
    experiment: str = typer.Option("lowres-ocr", "--experiment", "-e"),
    package: Path = typer.Option(Path("train_deploy.yaml"), "--package", "-f", help="compiled pipeline (compiled first if missing)"),
    param: Optional[list[str]] = typer.Option(None, "--param", "-p", help="pipeline argument KEY=VALUE (repeatable)"),
    run_name: Optional[str] = typer.Option(None, "--run-name"),
) -> None:
    """Create a run on a Kubeflow Pipelines cluster (SDK equivalent of ``kfp run create -e EXP -f train_deploy.yaml``)."""
    import kfp

    if not package.is_file():
        compile_pipeline(_root(), package)
    arguments: dict[str, Any] = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--param {item!r} must be KEY=VALUE")
        arguments[key] = json.loads(value) if value[:1] in "0123456789-[{" or value in ("true", "false") else value
    client = kfp.Client(host=host)
    run = client.create_run_from_pipeline_package(str(package), arguments=arguments, run_name=run_name, experiment_name=experiment)
    typer.echo(f"run {run.run_id} created in experiment {experiment}: {host}/#/runs/details/{run.run_id}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
