"""KFP steps of the serving stage: Triton repository, local deploy, smoke test."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

SERVING_STATE_ENV = "LOWRES_OCR_SERVING_STATE"


def repository_models(repo: Path) -> list[str]:
    """The model names of a Triton repository (folders with a config.pbtxt)."""
    return sorted(p.parent.name for p in repo.glob("*/config.pbtxt"))


def build_triton_repo(onnx_path: Path, out: Path, plan: Path | None, local: bool, page: bool = True) -> dict[str, Any]:
    """The ensemble repository; ``page`` adds the whole-page endpoint (models ``detector`` + ``lowres_ocr_page``)."""
    from lowres_ocr.page.serving import PageOptions
    from lowres_ocr.serving.repository import RepositoryOptions, write_repository

    opts = RepositoryOptions(local=local, page=PageOptions() if page else None)
    write_repository(onnx_path, out, None if local else plan, opts)
    return {"models": repository_models(out), "local": local, "tensorrt": bool(plan is not None and not local),
            "page": page}


def deploy_local(repo: Path, workdir: Path, http_port: int = 0, grpc_port: int = 0) -> dict[str, Any]:
    """Start tritonserver detached (own session): it outlives this step; its pid/ports go into the result."""
    from lowres_ocr.serving.server import TritonServer

    workdir.mkdir(parents=True, exist_ok=True)
    server = TritonServer(repo, http_port=http_port or None, grpc_port=grpc_port or None, workdir=workdir,
                          log_path=workdir / "tritonserver.log", ready_timeout=180)
    server.start()
    assert server.process is not None
    info = {"target": "local", "pid": server.process.pid, "http_url": server.http_url, "grpc_url": server.grpc_url,
            "metrics_port": server.metrics_port, "shm_prefix": server.shm_prefix, "log": str(server.log_path),
            "repo": str(repo), "models": repository_models(repo)}
    state = os.environ.get(SERVING_STATE_ENV)
    if state:  # `lowres-ocr pipeline run-local` reads it to print the endpoint and to stop the server at the end
        Path(state).parent.mkdir(parents=True, exist_ok=True)
        Path(state).write_text(json.dumps(info, indent=1))
    return info


def stop_local(info: dict[str, Any], timeout: float = 30) -> bool:
    """Stop a server started by ``deploy_local`` (SIGTERM to its process group, then SIGKILL); True if it was running."""
    pid = int(info["pid"])
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:  # reap it when it is our own child (a server started in this process)
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                break
        except ChildProcessError:
            pass
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.killpg(pid, signal.SIGKILL)
    for leftover in Path("/dev/shm").glob(f"{info['shm_prefix']}*"):
        leftover.unlink(missing_ok=True)
    return True


def page_smoke(endpoint: dict[str, Any], weights: Path) -> dict[str, Any]:
    """Whole pages to ``lowres_ocr_page`` over HTTP and gRPC; each must read as ``PageReader`` reads it in process."""
    from lowres_ocr.page.reader import PageReader
    from lowres_ocr.page.serving import PageOptions
    from lowres_ocr.page.smoke import page_smoke_test, smoke_pages

    options = PageOptions()  # what build_triton_repo serves
    reader = PageReader.load(weights, options.detector, options.detector_onnx)
    pages = smoke_pages()
    report = page_smoke_test(endpoint.get("http_url") or None, endpoint.get("grpc_url") or None, pages, reader)
    return dict(report.as_dict(), pages=sorted(pages))


def _failures(result: dict[str, Any]) -> str:
    parts = [("crops", result)] + ([("pages", result["page"])] if "page" in result else [])
    return "; ".join(f"{kind} over {proto['protocol']}: {err}" for kind, part in parts
                     for proto in part["protocols"] for err in proto["errors"])


def smoke(endpoint: dict[str, Any], crops: Path, expected: dict[str, str], repo: Path | None = None,
          weights: Path | None = None) -> dict[str, Any]:
    """Send the crops the evaluation predicted over HTTP and gRPC; every answer must equal its prediction.

    When ``repo`` serves the page endpoint, whole pages are checked too (``page_smoke``, reference ``weights``).
    """
    from lowres_ocr.serving.configs import PAGE
    from lowres_ocr.serving.smoke import smoke_test

    names = sorted(expected)
    images = [(crops / n).read_bytes() for n in names]
    report = smoke_test(endpoint.get("http_url") or None, endpoint.get("grpc_url") or None, images,
                        [expected[n] for n in names])
    result = report.as_dict()
    if repo is not None and PAGE in repository_models(repo):
        if weights is None:
            raise ValueError(f"{repo} serves {PAGE}: the page smoke test needs the deployed checkpoint")
        result["page"] = page_smoke(endpoint, weights)
        result["passed"] = bool(result["passed"] and result["page"]["passed"])
    state = os.environ.get(SERVING_STATE_ENV)
    if state:
        Path(state).with_name("smoke.json").write_text(json.dumps(result, indent=1))
    if not result["passed"]:
        raise RuntimeError(f"smoke test failed: {_failures(result)}")
    return result
