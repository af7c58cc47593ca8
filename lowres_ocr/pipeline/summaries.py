"""One short line per pipeline step, from the step's outputs (parameters and artifact metadata)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Outputs = dict[str, Any]  # output name → parameter value, or {"uri": ..., "metadata": {...}} for an artifact


def base_name(task: str) -> str:
    """``build-triton-repo-2`` → ``build-triton-repo`` (kfp numbers a component used more than once)."""
    return re.sub(r"-\d+$", "", task)


def _int(value: Any) -> str:
    """Metadata numbers come back as floats from kfp (protobuf Struct): 2.0 → "2"."""
    return str(int(value)) if isinstance(value, (int, float)) else "?"


def _meta(outputs: Outputs, name: str) -> dict[str, Any]:
    value = outputs.get(name)
    return value.get("metadata") or {} if isinstance(value, dict) else {}


def _version_data(out: Outputs, ctx: dict[str, Any]) -> str:
    m = _meta(out, "data")
    samples = m.get("samples") or {}
    return (f"{len(samples)} sets, {int(sum(samples.values()))} samples pulled (source {m.get('source', '?')}), "
            f"md5 {str(m.get('md5', '?'))[:10]}")


def _build_lmdb(out: Outputs, ctx: dict[str, Any]) -> str:
    m = _meta(out, "lmdb")
    kept, skipped = m.get("kept") or {}, m.get("skipped") or {}
    return f"{len(kept)} LMDBs, {int(sum(kept.values()))} samples kept, {int(sum(skipped.values()))} skipped"


def _train(out: Outputs, ctx: dict[str, Any]) -> str:
    m, model = _meta(out, "metrics"), _meta(out, "model")
    loss = m.get("loss_total")
    text = f"{int(m.get('step', 0))} steps" + (f", loss {loss:.3f}" if loss is not None else "")
    if "val_accuracy" in m:  # a fraction (lowres_ocr.train.validation)
        text += f", val accuracy {100 * m['val_accuracy']:.1f}%"
    return text + f" ({model.get('preset', '?')}, {model.get('launcher', '?')} x{_int(model.get('nproc_per_node'))})"


def _evaluate(out: Outputs, ctx: dict[str, Any]) -> str:
    m = _meta(out, "predictions")
    ctx["deploy"], ctx["deploy_model"] = m.get("deploy", "candidate"), m.get("deploy_model", "")
    base = m.get("baseline_sets") or {}
    sets = ", ".join(f"{name} {acc:.1f}%" + (f" (shipped {base[name]:.1f}%)" if name in base else "")
                     for name, acc in (m.get("sets") or {}).items())
    verdict = "gate passed" if m.get("passed") else "gate failed"
    if m.get("deploy") == "shipped":
        verdict += f" → keeping the shipped {m.get('deploy_model', 'model')}"
    elif m.get("deploy") == "none":
        verdict += " → nothing to deploy"
    return f"{sets}; {verdict}"


def _export_onnx(out: Outputs, ctx: dict[str, Any]) -> str:
    m = _meta(out, "onnx_model")
    parity = str(m.get("parity", "")).splitlines()[0] if m.get("parity") else "no parity result"
    return f"{m.get('bytes', 0) / 1e6:.1f} MB; {parity.replace('decoded strings identical', 'same strings')}"


def _convert_tensorrt(out: Outputs, ctx: dict[str, Any]) -> str:
    m = _meta(out, "plan")
    return "TensorRT plan built" if m.get("built") else f"no plan: {m.get('reason', 'skipped')}"


def _build_triton_repo(out: Outputs, ctx: dict[str, Any]) -> str:
    m = _meta(out, "repo")
    kind = "TensorRT" if m.get("tensorrt") else "python-backend" if m.get("local") else "ONNX"
    return f"{len(m.get('models') or [])} models ({', '.join(m.get('models') or [])}), {kind} recognizer"


def _serving(ctx: dict[str, Any]) -> str:
    return f" [shipped {ctx.get('deploy_model') or 'model'}]" if ctx.get("deploy") == "shipped" else " [new model]"


def _deploy_triton(out: Outputs, ctx: dict[str, Any]) -> str:
    m = _meta(out, "endpoint")
    page = " + page endpoint" if "lowres_ocr_page" in (m.get("models") or []) else ""
    return (f"HTTP {m.get('http_url', '?')}, gRPC {m.get('grpc_url', '?')} (pid {_int(m.get('pid'))}){page}"
            + _serving(ctx))


def _smoke_test(out: Outputs, ctx: dict[str, Any]) -> str:
    m = _meta(out, "result")
    crops = int(m.get("crops", 0))
    line = (f"HTTP {int(m.get('http_matched', 0))}/{crops}, gRPC {int(m.get('grpc_matched', 0))}/{crops} answers equal "
            f"the evaluation's")
    if "pages" in m:
        pages = int(m["pages"])
        line += (f"; pages HTTP {int(m.get('page_http_matched', 0))}/{pages}, gRPC {int(m.get('page_grpc_matched', 0))}"
                 f"/{pages} equal the in-process reading")
    return line + _serving(ctx)


SUMMARIES: dict[str, Callable[[Outputs, dict[str, Any]], str]] = {
    "version-data": _version_data, "build-lmdb": _build_lmdb, "train": _train, "evaluate": _evaluate,
    "export-onnx": _export_onnx, "convert-tensorrt": _convert_tensorrt, "build-triton-repo": _build_triton_repo,
    "deploy-triton": _deploy_triton, "smoke-test": _smoke_test,
}


def describe(task: str, outputs: Outputs, ctx: dict[str, Any]) -> str:
    """The key output of a step in a few words; ``ctx`` carries what earlier steps said (e.g. which model is served)."""
    summary = SUMMARIES.get(base_name(task))
    if summary is not None:
        try:
            return summary(outputs, ctx)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            return f"(outputs not summarised: {err})"
    params = [f"{k} {v}" for k, v in outputs.items() if not isinstance(v, dict)]
    return ", ".join(params)
