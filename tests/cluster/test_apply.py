"""``api.apply`` is a server-side apply: one PATCH (apply-patch, fieldManager lowres-ocr, force) that creates the
object or makes the desired object its content, so a field removed from the desired object is gone on the server."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from lowres_ocr.cluster import api, objects, triton

RBAC = Path(__file__).resolve().parents[2] / "manifests" / "base" / "rbac.yaml"
GPU_NODES = {"nvidia.com/gpu.present": "true"}


def _deployment(with_field: bool) -> dict[str, Any]:
    placement = objects.Placement(namespace="ml", node_selector=GPU_NODES if with_field else {})
    return objects.triton_deployment(objects.TritonDeployment(placement=placement))


def _service(with_field: bool) -> dict[str, Any]:
    svc = objects.triton_service(objects.TritonDeployment(placement=objects.Placement(namespace="ml")))
    if with_field:
        svc["metadata"]["labels"]["tier"] = "serving"
    return svc


def _isvc(with_field: bool) -> dict[str, Any]:
    placement = objects.Placement(namespace="ml", node_selector=GPU_NODES if with_field else {})
    return objects.inference_service(objects.TritonDeployment(placement=placement), "s3://lowres-ocr/triton")


def _field(obj: dict[str, Any]) -> Any:
    """The field that ``with_field`` adds, or None."""
    if obj["kind"] == "Deployment":
        return obj["spec"]["template"]["spec"].get("nodeSelector")
    if obj["kind"] == "Service":
        return obj["metadata"]["labels"].get("tier")
    return obj["spec"]["predictor"].get("nodeSelector")


@pytest.mark.parametrize("build", [_deployment, _service, _isvc], ids=["Deployment", "Service", "InferenceService"])
def test_apply_removes_a_field_dropped_from_the_desired_object(apiserver, clients,
                                                               build: Callable[[bool], dict[str, Any]]) -> None:
    first, second = build(True), build(False)
    assert _field(first) and _field(second) is None
    assert api.apply(clients, first) == "created"
    (key, stored), = apiserver.state.objects.items()
    assert _field(stored) == _field(first)
    assert api.apply(clients, second) == "patched"
    stored = apiserver.state.objects[key]
    assert _field(stored) is None, f"{first['kind']}: the removed field is still on the server"
    assert stored["metadata"]["uid"] == "uid-0" and api.object_path(second) == key
    sent = [r for r in apiserver.calls() if r.method != "GET"]
    assert [r.method for r in sent] == ["PATCH", "PATCH"]
    for r in sent:
        assert r.content_type == "application/apply-patch+yaml"
        assert r.query["fieldManager"] == ["lowres-ocr"] and r.query["force"] == ["true"]
        assert r.path == api.object_path(first)
    assert stored["metadata"]["managedFields"] == [{"manager": "lowres-ocr", "operation": "Apply"}]


def test_apply_takes_over_an_object_another_manager_created(apiserver, clients) -> None:
    dep = _deployment(True)
    clients.apps.create_namespaced_deployment("ml", dep)  # e.g. kubectl create: no apply manager yet
    assert api.apply(clients, _deployment(False)) == "patched"
    (stored,) = apiserver.state.objects.values()
    assert _field(stored) is None and stored["metadata"]["generation"] == 2


def _role_rules() -> list[dict[str, Any]]:
    return next(d for d in yaml.safe_load_all(RBAC.read_text()) if d and d["kind"] == "Role")["rules"]


def test_role_grants_exactly_the_verbs_the_deploys_use(apiserver, clients) -> None:
    apiserver.state.rules = _role_rules()
    plain = objects.TritonDeployment(placement=objects.Placement(namespace="ml"))
    kserve = objects.TritonDeployment(name="lowres-ocr-isvc", placement=plain.placement)
    apiserver.state.scripts[kserve.name] = [{"conditions": [{"type": "Ready", "status": "True"}]}]
    for _ in range(2):  # the first run creates, the second updates
        for target, t in (("kubernetes", plain), ("kserve", kserve)):
            triton.deploy(clients, target, t, "s3://lowres-ocr/triton", timeout=10, poll=0.05, log=lambda m: None)
    applied = {("apps", "deployments"), ("", "services"), ("serving.kserve.io", "inferenceservices")}
    used = {(g, r, v) for g, r, v in apiserver.state.verbs if (g, r) in applied}
    granted = {(g, r, v) for rule in _role_rules() for g in rule["apiGroups"] for r in rule["resources"]
               for v in rule["verbs"] if (g, r) in applied}
    assert used == granted


def test_apply_that_creates_needs_create(apiserver, clients) -> None:
    from kubernetes.client.exceptions import ApiException

    apiserver.state.rules = [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]}]
    with pytest.raises(ApiException) as info:
        api.apply(clients, _deployment(False))
    assert info.value.status == 403 and not apiserver.state.objects


def test_fake_apiserver_merge_patch_keeps_fields_left_out(apiserver, clients) -> None:
    """The fake's merge patch is RFC 7386: what the old create-then-merge-patch apply relied on keeps old fields."""
    clients.apps.create_namespaced_deployment("ml", _deployment(True))
    clients.apps.patch_namespaced_deployment("lowres-ocr-triton", "ml", _deployment(False))
    (stored,) = apiserver.state.objects.values()
    assert _field(stored) == GPU_NODES
