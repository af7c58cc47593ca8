"""Talk to the Kubernetes API server with the official client (no kubectl).

``connect()`` loads the in-cluster service-account config inside a pod, else ~/.kube/config (or ``host`` for
tests). Every body is validated with ``schemas.validate`` before it is sent. Training jobs are created
(``create_custom``); serving objects are server-side applied (``apply``).
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
#: (apiVersion, kind) → resource of every kind ``apply`` sends
APPLIED: dict[tuple[str, str], str] = {
    ("apps/v1", "Deployment"): "deployments",
    ("v1", "Service"): "services",
    ("serving.kserve.io/v1beta1", "InferenceService"): "inferenceservices",
}
#: the field manager of every server-side apply, and its content type
FIELD_MANAGER = "lowres-ocr"
APPLY_PATCH = "application/apply-patch+yaml"


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


def object_path(obj: dict[str, Any]) -> str:
    """The API path of ``obj`` (a kind ``apply`` sends), e.g. /apis/apps/v1/namespaces/ns/deployments/name."""
    key = (obj["apiVersion"], obj["kind"])
    if key not in APPLIED:
        raise ValueError(f"apply does not handle {obj['kind']} ({obj['apiVersion']})")
    prefix = f"/apis/{obj['apiVersion']}" if "/" in obj["apiVersion"] else f"/api/{obj['apiVersion']}"
    meta = obj["metadata"]
    return f"{prefix}/namespaces/{meta['namespace']}/{APPLIED[key]}/{meta['name']}"


def apply(c: Clients, obj: dict[str, Any]) -> str:
    """Server-side apply ``obj`` as field manager ``lowres-ocr`` (forced): one PATCH that creates the object, or
    makes ``obj`` what this manager owns, so a field dropped from ``obj`` is removed from the live object.

    Returns "created" (the server answered 201) or "patched". RBAC: ``patch``, plus ``create`` for the apply
    that creates the object (the API server authorizes that one as a create).
    """
    schemas.validate(obj)
    path = object_path(obj)
    _, status, _ = c.api.call_api(
        path, "PATCH", query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        header_params={"Content-Type": APPLY_PATCH, "Accept": "application/json"}, body=obj,
        response_type="object", auth_settings=["BearerToken"], _return_http_data_only=False)
    return "created" if status == 201 else "patched"
