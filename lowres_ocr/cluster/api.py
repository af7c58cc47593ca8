"""Talk to the Kubernetes API server with the official client (no kubectl).

``connect()`` loads the in-cluster service-account config inside a pod, else ~/.kube/config (or ``host`` for
tests). Every body is validated with ``schemas.validate`` before it is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lowres_ocr.cluster import schemas

# custom resources: (group, version, plural)
PLURALS: dict[tuple[str, str], tuple[str, str, str]] = {
    ("kubeflow.org/v1", "PyTorchJob"): ("kubeflow.org", "v1", "pytorchjobs"),
    ("trainer.kubeflow.org/v1alpha1", "TrainJob"): ("trainer.kubeflow.org", "v1alpha1", "trainjobs"),
    ("serving.kserve.io/v1beta1", "InferenceService"): ("serving.kserve.io", "v1beta1", "inferenceservices"),
}


@dataclass
class Clients:
    api: Any  # kubernetes.client.ApiClient
    custom: Any  # CustomObjectsApi
    core: Any  # CoreV1Api
    apps: Any  # AppsV1Api


def connect(host: str | None = None, token: str | None = None) -> Clients:
    from kubernetes import client, config

    if host is not None:
        cfg = client.Configuration()
        cfg.host = host
        if token:
            cfg.api_key = {"authorization": f"Bearer {token}"}
        api = client.ApiClient(cfg)
    else:
        import os

        try:
            config.load_incluster_config()
        except config.ConfigException:
            # KUBECONFIG read now, not at import time of kubernetes.config (which caches its default)
            config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None)
        api = client.ApiClient()
    return Clients(api, client.CustomObjectsApi(api), client.CoreV1Api(api), client.AppsV1Api(api))


def _coords(obj: dict[str, Any]) -> tuple[str, str, str]:
    key = (obj["apiVersion"], obj["kind"])
    if key not in PLURALS:
        raise ValueError(f"not a custom resource this project sends: {key}")
    return PLURALS[key]


def create_custom(c: Clients, obj: dict[str, Any]) -> dict[str, Any]:
    schemas.validate(obj)
    g, v, plural = _coords(obj)
    return c.custom.create_namespaced_custom_object(g, v, obj["metadata"]["namespace"], plural, obj)


def get_custom(c: Clients, obj: dict[str, Any]) -> dict[str, Any]:
    g, v, plural = _coords(obj)
    return c.custom.get_namespaced_custom_object(g, v, obj["metadata"]["namespace"], plural, obj["metadata"]["name"])


def delete_custom(c: Clients, obj: dict[str, Any]) -> None:
    from kubernetes.client.exceptions import ApiException

    g, v, plural = _coords(obj)
    try:
        c.custom.delete_namespaced_custom_object(g, v, obj["metadata"]["namespace"], plural, obj["metadata"]["name"],
                                                 propagation_policy="Foreground")
    except ApiException as err:
        if err.status != 404:
            raise


def apply(c: Clients, obj: dict[str, Any]) -> str:
    """Create ``obj``, or merge-patch it when it exists (idempotent). Returns "created" or "patched"."""
    from kubernetes.client.exceptions import ApiException

    schemas.validate(obj)
    ns, name, kind = obj["metadata"]["namespace"], obj["metadata"]["name"], obj["kind"]
    if (obj["apiVersion"], kind) in PLURALS:
        g, v, plural = _coords(obj)
        create = lambda: c.custom.create_namespaced_custom_object(g, v, ns, plural, obj)  # noqa: E731
        patch = lambda: c.custom.patch_namespaced_custom_object(g, v, ns, plural, name, obj)  # noqa: E731
    elif kind == "Deployment":
        create = lambda: c.apps.create_namespaced_deployment(ns, obj)  # noqa: E731
        patch = lambda: c.apps.patch_namespaced_deployment(name, ns, obj)  # noqa: E731
    elif kind == "Service":
        create = lambda: c.core.create_namespaced_service(ns, obj)  # noqa: E731
        patch = lambda: c.core.patch_namespaced_service(name, ns, obj)  # noqa: E731
    else:
        raise ValueError(f"apply does not handle {kind}")
    try:
        create()
        return "created"
    except ApiException as err:
        if err.status != 409:
            raise
    patch()
    return "patched"
