"""Deploy the Triton model repository on the cluster: Deployment + Service, or a KServe InferenceService.

Idempotent (server-side apply) and waits for readiness. NOT run against a real cluster here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from lowres_ocr.cluster import api, objects


class DeployTimeout(RuntimeError):
    pass


@dataclass
class Endpoint:
    target: str
    http_url: str
    grpc_url: str
    actions: dict[str, str]


def deployment_ready(dep: Any, replicas: int) -> bool:
    st = dep.status
    return bool(st and (st.ready_replicas or 0) >= replicas and (st.updated_replicas or 0) >= replicas
                and (st.observed_generation or 0) >= (dep.metadata.generation or 0))


def isvc_ready(obj: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and str(c.get("status")) == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def _wait(check: Callable[[], bool], what: str, timeout: float, poll: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() >= deadline:
            raise DeployTimeout(f"{what} not ready after {timeout:.0f} s")
        time.sleep(poll)


def deploy(c: api.Clients, target: str, t: objects.TritonDeployment, storage_uri: str,
           timeout: float = 900, poll: float = 5, log: Callable[[str], None] = print) -> Endpoint:
    ns = t.placement.namespace
    if target == "kubernetes":
        dep, svc = objects.triton_deployment(t), objects.triton_service(t)
        actions = {"Deployment": api.apply(c, dep), "Service": api.apply(c, svc)}
        log(f"Deployment/{t.name}: {actions['Deployment']}, Service/{t.name}: {actions['Service']}")
        _wait(lambda: deployment_ready(c.apps.read_namespaced_deployment(t.name, ns), t.replicas),
              f"Deployment/{t.name}", timeout, poll)
        host = f"{t.name}.{ns}.svc.cluster.local"
        return Endpoint(target, f"{host}:8000", f"{host}:8001", actions)
    if target == "kserve":
        isvc = objects.inference_service(t, storage_uri)
        actions = {"InferenceService": api.apply(c, isvc)}
        log(f"InferenceService/{t.name}: {actions['InferenceService']}")
        _wait(lambda: isvc_ready(api.get_custom(c, isvc)), f"InferenceService/{t.name}", timeout, poll)
        host = f"{t.name}-predictor.{ns}.svc.cluster.local"
        # the predictor Service exposes one port (HTTP, KServe v2 protocol); gRPC needs an h2c port on the
        # ServingRuntime, so the smoke test checks HTTP only on this target
        return Endpoint(target, f"{host}:80", "", actions)
    raise ValueError(f"cluster deploy target must be kubernetes or kserve, got {target!r}")
