"""Triton Deployment + Service and KServe InferenceService against the fake API server (server-side apply, ready wait)."""

from __future__ import annotations

import pytest

from lowres_ocr.cluster import objects, schemas, triton

PLACEMENT = objects.Placement(namespace="ml")


def test_deployment_shape():
    dep = objects.triton_deployment(objects.TritonDeployment(placement=PLACEMENT))
    schemas.validate(dep)
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert [p["containerPort"] for p in c["ports"]] == [8000, 8001, 8002]
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready" and "startupProbe" in c
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}} in pod["volumes"]
    assert pod["securityContext"]["runAsNonRoot"] is True and c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "--model-repository=s3://lowres-ocr/triton" in c["args"]
    pvc = objects.triton_deployment(objects.TritonDeployment(model_repository="pvc://triton/repo", placement=PLACEMENT))
    assert "--model-repository=/workspace/triton/repo" in pvc["spec"]["template"]["spec"]["containers"][0]["args"]
    with pytest.raises(ValueError):
        objects.triton_deployment(objects.TritonDeployment(model_repository="/tmp/x"))


def test_deploy_kubernetes_is_idempotent(apiserver, clients):
    t = objects.TritonDeployment(placement=PLACEMENT)
    apiserver.state.deployment_ready_after = 2
    ep = triton.deploy(clients, "kubernetes", t, "s3://lowres-ocr/triton", timeout=10, poll=0.05, log=lambda m: None)
    assert ep.actions == {"Deployment": "created", "Service": "created"}
    assert ep.http_url == "lowres-ocr-triton.ml.svc.cluster.local:8000"
    ep2 = triton.deploy(clients, "kubernetes", t, "s3://lowres-ocr/triton", timeout=10, poll=0.05, log=lambda m: None)
    assert ep2.actions == {"Deployment": "patched", "Service": "patched"}
    sent = [r for r in apiserver.calls() if r.method != "GET"]
    assert [(r.method, r.path.rsplit("/", 2)[-2:]) for r in sent] == [
        ("PATCH", ["deployments", "lowres-ocr-triton"]), ("PATCH", ["services", "lowres-ocr-triton"])] * 2
    for r in sent:
        assert r.content_type == "application/apply-patch+yaml" and r.query["fieldManager"] == ["lowres-ocr"]
        schemas.validate(r.body)


def test_deploy_kserve_waits_for_ready(apiserver, clients):
    t = objects.TritonDeployment(placement=PLACEMENT)
    apiserver.state.scripts[t.name] = [{"conditions": [{"type": "Ready", "status": "False"}]},
                                       {"conditions": [{"type": "Ready", "status": "True"}]}]
    ep = triton.deploy(clients, "kserve", t, "s3://lowres-ocr/triton", timeout=10, poll=0.05, log=lambda m: None)
    assert ep.actions == {"InferenceService": "created"}
    assert ep.http_url == "lowres-ocr-triton-predictor.ml.svc.cluster.local:80" and ep.grpc_url == ""
    applied = apiserver.calls("PATCH")[0]
    assert applied.path == "/apis/serving.kserve.io/v1beta1/namespaces/ml/inferenceservices/lowres-ocr-triton"
    assert applied.content_type == "application/apply-patch+yaml"
    assert applied.body["spec"]["predictor"]["model"]["modelFormat"] == {"name": "triton"}
    assert applied.body["spec"]["predictor"]["model"]["storageUri"] == "s3://lowres-ocr/triton"
    reads = [r for r in apiserver.calls("GET") if r.path.endswith("/inferenceservices/lowres-ocr-triton")]
    assert len(reads) == 2


def test_deploy_timeout(apiserver, clients):
    t = objects.TritonDeployment(placement=PLACEMENT)
    apiserver.state.deployment_ready_after = 10**6
    with pytest.raises(triton.DeployTimeout, match="Deployment/lowres-ocr-triton not ready"):
        triton.deploy(clients, "kubernetes", t, "", timeout=0.5, poll=0.05, log=lambda m: None)
