"""``lowres-ocr pipeline``: compile the Kubeflow pipeline, run it on this machine (kfp.local), or submit it.

``run-local`` is the project's main job: the whole ``train_deploy`` pipeline through kfp.local's
SubprocessRunner, with caching, ending with a real local tritonserver answering over HTTP and gRPC. The terminal
shows one line per step (:mod:`lowres_ocr.pipeline.progress`); the steps' own output goes to a log file.
"""

from __future__ import annotations

import importlib.util
import json
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


def _local_arguments(preset: str, steps: int, nproc: int, min_accuracy: float, eval_limit: int, eval_modes: str,
                     init_from: str, gate_tolerance: float) -> dict[str, Any]:
    return {"preset": preset, "train_steps": steps, "nproc_per_node": nproc, "nnodes": 1, "launcher": "local", "gpus": 0,
            "min_accuracy": min_accuracy, "eval_limit": eval_limit, "eval_modes": eval_modes, "init_from": init_from,
            "deploy_target": "local", "gate_tolerance": gate_tolerance}


#: Pipeline arguments that name files of the checkout: kfp.local keys its cache by argument values, so a file that
#: changed under the same path (a new model/lowres_ocr.pt) would otherwise be served from the old run's outputs.
PATH_ARGUMENTS = ("init_from", "baseline_model", "baseline_report")
PATH_DIGESTS = ".path_arguments.json"


def path_digests(root: Path, args: dict[str, Any]) -> dict[str, str]:
    """sha256 of each file a path argument names (relative to ``root``), keyed ``argument=path``."""
    import hashlib

    out = {}
    for key in PATH_ARGUMENTS:
        value = args.get(key)
        path = (root / value) if value else None
        if path is not None and path.is_file():
            out[f"{key}={value}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def changed_path_arguments(outputs_root: Path, digests: dict[str, str]) -> list[str]:
    """The path arguments whose file differs from the one the cached outputs were made with (none recorded: none)."""
    record = outputs_root / PATH_DIGESTS
    if not record.is_file():
        return []
    before = json.loads(record.read_text(encoding="utf-8"))
    return sorted(k for k, v in digests.items() if k in before and before[k] != v)


def _default_init(root: Path, init_from: Optional[str]) -> str:
    if init_from is not None:
        return init_from
    shipped = root / "model" / "lowres_ocr.pt"
    if not shipped.is_file():
        typer.echo(f"note: {shipped} is not in this checkout; training starts from the preset's initialisation", err=True)
        return ""
    return str(shipped)


def _serving_state(outputs_root: Path) -> Path:
    """Where deploy_triton / smoke_test leave the endpoint and smoke result for this command (cleared first)."""
    from lowres_ocr.serving.steps import SERVING_STATE_ENV

    state = outputs_root / "serving" / "endpoint.json"
    state.unlink(missing_ok=True)
    state.with_name("smoke.json").unlink(missing_ok=True)
    os.environ[SERVING_STATE_ENV] = str(state)
    return state


def _print_result(outs: dict[str, Any], tracker: Any, state: Path, log_path: Path, keep_serving: bool) -> int:
    """The lines after the step lines: report, what is served and where, how to query it; returns the exit code."""
    from lowres_ocr.serving.steps import stop_local

    info = outs["predictions"].metadata
    cached = [t for t, how in tracker.done.items() if how == "cached"]
    typer.echo(f"pipeline finished in {tracker.context.get('wall', 0):.0f} s; "
               f"{len(cached)} steps from the cache{' (' + ', '.join(cached) + ')' if cached else ''}")
    typer.echo(f"  report       {outs['predictions'].path}/report/report.md (.json, .html)")
    if not state.is_file():
        typer.echo(f"  not deployed: {info.get('gate', 'the deploy gate did not pass')}")
        typer.echo(f"full log: {log_path}")
        return 0 if info.get("deploy") not in (None, "none") else 1
    served = info.get("deploy_model", "?")
    why = "the new model" if info.get("deploy") == "candidate" else "the shipped model: the new one did not pass the gate"
    endpoint = json.loads(state.read_text())
    typer.echo(f"  serving      {served} ({why})")
    typer.echo(f"  endpoint     HTTP {endpoint['http_url']}, gRPC {endpoint['grpc_url']}; server log {endpoint['log']}")
    typer.echo(f"  query        lowres-ocr infer --url {endpoint['http_url']} CROP.png   "
               f"(gRPC: --url {endpoint['grpc_url']} --protocol grpc)")
    if keep_serving:
        typer.echo(f"tritonserver keeps running (pid {endpoint['pid']}); stop it with: kill -TERM -{endpoint['pid']}")
    else:
        stop_local(endpoint)
        typer.echo(f"tritonserver (pid {endpoint['pid']}) stopped; --keep-serving leaves it running")
    typer.echo(f"full log: {log_path}")
    return 0


def _run_pipeline(root: Path, outputs_root: Path, cache: bool, args: dict[str, Any], log_path: Path) -> tuple[Any, Any, Any]:
    from kfp import local

    from lowres_ocr.pipeline.progress import run_with_progress

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(outputs_root), enable_caching=cache,
               raise_on_error=True)
    pipeline = load_pipeline(root)
    return run_with_progress(lambda: pipeline(**args), pipeline, log_path, outputs_root / ".kfp_cache")


@app.command("run-local")
def run_local(
    preset: str = typer.Option("finetune", help="training config: finetune (small learning rates, from --init-from), small, default, gpu, or a YAML file"),
    steps: int = typer.Option(40, help="training steps of the short run (0 = the preset's)"),
    nproc: int = typer.Option(2, "--nproc-per-node", help="torchrun processes (CPU, gloo)"),
    init_from: Optional[str] = typer.Option(None, help="checkpoint to fine-tune (default: the shipped model/lowres_ocr.pt)"),
    min_accuracy: float = typer.Option(60.0, help="deploy gate: weighted average word accuracy (%) on the eval sets"),
    gate_tolerance: float = typer.Option(0.0, help="deploy gate: points the new model may lose to the shipped one, per set"),
    eval_limit: int = typer.Option(200, help="first N samples of each evaluation set (0 = all)"),
    eval_modes: str = typer.Option("sr", help="evaluation modes (sr: the served path; pairs also run hr/bicubic with \"\")"),
    pipeline_root: Path = typer.Option(Path("local_outputs"), help="where kfp.local writes artifacts (and its cache)"),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="reuse outputs of unchanged steps from earlier runs"),
    keep_serving: bool = typer.Option(False, "--keep-serving", help="leave tritonserver running after the run"),
) -> None:
    """Run the whole pipeline on this machine: dvc pull → LMDB → torchrun (2 procs) → evaluate + gate (vs the shipped
    model) → ONNX → Triton repository → local tritonserver → smoke test over HTTP and gRPC. One line per step on
    the terminal; everything the steps print goes to PIPELINE_ROOT/run-<time>.log."""
    from lowres_ocr.serving.steps import stop_local

    root = _root()
    os.chdir(root)
    os.environ["LOWRES_OCR_ROOT"] = str(root)
    args = _local_arguments(preset, steps, nproc, min_accuracy, eval_limit, eval_modes, _default_init(root, init_from),
                            gate_tolerance)
    outputs_root = (root / pipeline_root).resolve()
    state = _serving_state(outputs_root)
    log_path = outputs_root / f"run-{time.strftime('%Y%m%d-%H%M%S')}.log"
    digests = path_digests(root, args)
    changed = changed_path_arguments(outputs_root, digests)
    if cache and changed:
        cache = False
        typer.echo(f"cache off for this run: {', '.join(changed)} changed since the cached outputs were made")
    typer.echo(f"kfp.local run of {PIPELINE_FILE} (cache {'on' if cache else 'off'}); Kubernetes settings are ignored "
               f"here, no cluster is contacted. Full log: {log_path}")
    result, tracker, error = _run_pipeline(root, outputs_root, cache, args, log_path)
    if error is not None:
        if state.is_file() and not keep_serving:
            stop_local(json.loads(state.read_text()))
        failed = ", ".join(tracker.failed) or "the pipeline itself"
        typer.echo(f"pipeline FAILED ({failed}) after {tracker.context.get('wall', 0):.0f} s: "
                   f"{str(error).splitlines()[0][:200]}", err=True)
        typer.echo(f"full log: {log_path}", err=True)
        raise typer.Exit(1)
    (outputs_root / PATH_DIGESTS).write_text(json.dumps(digests, indent=1) + "\n", encoding="utf-8")
    raise typer.Exit(_print_result(result.outputs, tracker, state, log_path, keep_serving))


@app.command("submit")
def submit_command(
    host: str = typer.Option(..., "--host", help="Kubeflow Pipelines API endpoint, e.g. https://kfp.example.com/pipeline"),
    experiment: str = typer.Option("lowres-ocr", "--experiment", "-e"),
    package: Path = typer.Option(Path("train_deploy.yaml"), "--package", "-f", help="compiled pipeline (compiled first if missing)"),
    param: Optional[list[str]] = typer.Option(None, "--param", "-p", help="pipeline argument KEY=VALUE (repeatable)"),
    run_name: Optional[str] = typer.Option(None, "--run-name"),
) -> None:
    """Create a run on a Kubeflow Pipelines cluster (SDK equivalent of ``kfp run create -e EXP -f train_deploy.yaml``).

    ``-p`` values take the type of the pipeline parameter they name (int, float, bool, str; ``-p KEY=`` is "")."""
    import kfp

    from lowres_ocr.pipeline.params import ParameterError, parameter_types, typed_arguments

    if not package.is_file():
        compile_pipeline(_root(), package)
    try:
        arguments = typed_arguments(param or [], parameter_types(package))
    except ParameterError as err:
        raise typer.BadParameter(str(err), param_hint="'--param' / '-p'") from None
    client = kfp.Client(host=host)
    run = client.create_run_from_pipeline_package(str(package), arguments=arguments, run_name=run_name, experiment_name=experiment)
    typer.echo(f"run {run.run_id} created in experiment {experiment}: {host}/#/runs/details/{run.run_id}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
