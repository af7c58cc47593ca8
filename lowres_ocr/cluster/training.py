"""Run a PyTorchJob or TrainJob to completion: create, watch until Succeeded/Failed, timeout, delete on cancel.

NOT run against a real cluster here (no API server on this machine): tested against a local HTTP server that
plays the API server (tests/cluster).
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from lowres_ocr.cluster import api, objects

JOB_NAME_LABEL = {"PyTorchJob": "training.kubeflow.org/job-name", "TrainJob": "jobset.sigs.k8s.io/jobset-name"}
REPLICA_LABEL = {"PyTorchJob": "training.kubeflow.org/replica-type", "TrainJob": "jobset.sigs.k8s.io/replicatedjob-name"}


class TrainingFailed(RuntimeError):
    pass


class TrainingTimeout(TrainingFailed):
    pass


class TrainingCancelled(TrainingFailed):
    pass


@dataclass
class JobResult:
    kind: str
    name: str
    phase: str  # Succeeded | Failed
    seconds: float
    message: str = ""
    log_tail: str = ""
    conditions: list[dict[str, Any]] = field(default_factory=list)


def job_phase(obj: dict[str, Any]) -> tuple[str, str]:
    """("Succeeded" | "Failed" | "Running", message) from the job's status.conditions (both operators use
    Kubernetes-style conditions; TrainJob calls success "Complete")."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if str(cond.get("status")) != "True":
            continue
        ctype = cond.get("type")
        if ctype in ("Succeeded", "Complete"):
            return "Succeeded", cond.get("message", "")
        if ctype == "Failed":
            return "Failed", cond.get("message", "")
    return "Running", ""


def failing_log_tail(c: api.Clients, obj: dict[str, Any], lines: int = 50) -> str:
    """The last ``lines`` of the log of the job's failed pod(s) (else the first pod's), each headed by its name."""
    kind, meta = obj["kind"], obj["metadata"]
    pods = c.core.list_namespaced_pod(meta["namespace"], label_selector=f"{JOB_NAME_LABEL[kind]}={meta['name']}").items
    failed = [p for p in pods if (p.status and p.status.phase == "Failed")] or pods[:1]
    parts = []
    for pod in failed:
        replica = (pod.metadata.labels or {}).get(REPLICA_LABEL[kind], "?")
        try:
            text = c.core.read_namespaced_pod_log(pod.metadata.name, meta["namespace"], tail_lines=lines)
        except Exception as err:  # noqa: BLE001 - the tail is diagnostics; never hide the job's own failure
            text = f"<log unavailable: {err}>"
        parts.append(f"--- {pod.metadata.name} (replica {replica}) ---\n{text}")
    return "\n".join(parts)


def follow(c: api.Clients, obj: dict[str, Any], timeout: float, watch_seconds: int = 10,
           cancelled: threading.Event | None = None) -> JobResult:
    """Watch ``obj`` until it succeeds, fails, ``timeout`` passes, or ``cancelled`` is set."""
    from kubernetes import watch

    g, v, plural = api._coords(obj)
    ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    t0 = time.monotonic()
    while True:
        left = timeout - (time.monotonic() - t0)
        if cancelled is not None and cancelled.is_set():
            raise TrainingCancelled(f"{obj['kind']}/{name} cancelled")
        if left <= 0:
            raise TrainingTimeout(f"{obj['kind']}/{name} did not finish within {timeout:.0f} s")
        w = watch.Watch()
        stream = w.stream(c.custom.list_namespaced_custom_object, g, v, ns, plural,
                          field_selector=f"metadata.name={name}", timeout_seconds=max(1, int(min(watch_seconds, left))))
        for event in stream:
            current = event["object"]
            phase, message = job_phase(current)
            if phase != "Running":
                w.stop()
                conditions = (current.get("status") or {}).get("conditions") or []
                tail = failing_log_tail(c, obj) if phase == "Failed" else ""
                return JobResult(obj["kind"], name, phase, time.monotonic() - t0, message, tail, conditions)
            if cancelled is not None and cancelled.is_set():
                w.stop()
                break


def run_job(c: api.Clients, obj: dict[str, Any], timeout: float = 6 * 3600, watch_seconds: int = 10,
            log: Callable[[str], None] = print, install_sigterm: bool = True) -> JobResult:
    """Create the job and follow it. SIGTERM/SIGINT (pipeline run cancelled) or a timeout delete the job.

    Raises ``TrainingFailed`` (with the failing replica's log tail) when the job fails.
    """
    cancelled = threading.Event()
    previous: dict[int, Any] = {}
    if install_sigterm and threading.current_thread() is threading.main_thread():
        def _on_signal(signum: int, frame: Any) -> None:
            log(f"signal {signum}: cancelling {obj['kind']}/{obj['metadata']['name']}")
            cancelled.set()
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, _on_signal)
    api.create_custom(c, obj)
    log(f"created {obj['kind']}/{obj['metadata']['name']} in namespace {obj['metadata']['namespace']}")
    try:
        result = follow(c, obj, timeout, watch_seconds, cancelled)
    except (TrainingTimeout, TrainingCancelled):
        api.delete_custom(c, obj)
        log(f"deleted {obj['kind']}/{obj['metadata']['name']}")
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log(f"{obj['kind']}/{result.name}: {result.phase} after {result.seconds:.0f} s {result.message}")
    if result.phase == "Failed":
        raise TrainingFailed(f"{obj['kind']}/{result.name} failed: {result.message}\n{result.log_tail}")
    return result


def build_job(launcher: str, job: objects.TrainingJob) -> dict[str, Any]:
    if launcher == "pytorchjob":
        return objects.pytorchjob(job)
    if launcher == "trainjob":
        return objects.trainjob(job)
    raise ValueError(f"launcher must be pytorchjob or trainjob for a cluster job, got {launcher!r}")
