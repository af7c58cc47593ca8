"""PyTorchJob / TrainJob against a local fake API server: create, watch to Succeeded and Failed, timeout, cancel."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from lowres_ocr.cluster import objects, schemas, training

RUNNING = {"conditions": [{"type": "Created", "status": "True"}, {"type": "Running", "status": "True"}]}
SUCCEEDED = {"conditions": [{"type": "Running", "status": "False"}, {"type": "Succeeded", "status": "True", "message": "done"}]}
FAILED = {"conditions": [{"type": "Failed", "status": "True", "message": "PyTorchJob t is failed because 1 Worker replica(s) failed."}]}
COMPLETE = {"conditions": [{"type": "Complete", "status": "True", "message": "jobset completed"}]}
PLACEMENT = objects.Placement(namespace="ml", node_selector={"nvidia.com/gpu.present": "true"},
                              tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])


def _job(name: str, nnodes: int = 2) -> objects.TrainingJob:
    return objects.TrainingJob(name, "registry.example/lowres-ocr:0.1.0", nnodes=nnodes, nproc_per_node=4,
                               gpus_per_node=4, overrides=["train.steps=100"], placement=PLACEMENT)


def test_pytorchjob_shape_and_schema():
    body = objects.pytorchjob(_job("t", nnodes=3))
    assert "pytorchjob.kubeflow.org.v1" in schemas.validate(body)
    specs = body["spec"]["pytorchReplicaSpecs"]
    assert specs["Master"]["replicas"] == 1 and specs["Worker"]["replicas"] == 2
    assert body["spec"]["nprocPerNode"] == "4"
    c = specs["Worker"]["template"]["spec"]["containers"][0]
    assert c["name"] == "pytorch" and c["resources"]["limits"]["nvidia.com/gpu"] == 4
    assert c["args"][:4] == ["-m", "torch.distributed.run", "-m", "lowres_ocr.train"]
    assert {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "lowres-ocr-s3", "key": "AWS_ACCESS_KEY_ID", "optional": False}}} in c["env"]
    assert "Worker" not in objects.pytorchjob(_job("t", nnodes=1))["spec"]["pytorchReplicaSpecs"]


def test_trainjob_shape_and_schema():
    body = objects.trainjob(_job("t"))
    assert "trainjob.trainer.kubeflow.org.v1alpha1" in schemas.validate(body)
    assert body["spec"]["runtimeRef"]["name"] == "torch-distributed"
    assert body["spec"]["trainer"]["numNodes"] == 2 and body["spec"]["trainer"]["numProcPerNode"] == 4


def test_schema_rejects_typos():
    body = objects.pytorchjob(_job("t"))
    body["spec"]["pytorchReplicaSpecs"]["Master"]["replica"] = 1
    with pytest.raises(schemas.SchemaError, match="replica"):
        schemas.validate(body)
    body = objects.trainjob(_job("t"))
    body["spec"]["trainer"]["numNodes"] = "two"
    with pytest.raises(schemas.SchemaError, match="numNodes"):
        schemas.validate(body)


@pytest.mark.parametrize("launcher,done", [("pytorchjob", SUCCEEDED), ("trainjob", COMPLETE)])
def test_create_and_watch_to_success(apiserver, clients, launcher, done):
    body = training.build_job(launcher, _job("ok"))
    apiserver.state.scripts["ok"] = [RUNNING, RUNNING, done]
    res = training.run_job(clients, body, timeout=20, watch_seconds=5, log=lambda m: None)
    assert res.phase == "Succeeded" and res.log_tail == ""
    posts = apiserver.calls("POST")
    plural = "pytorchjobs" if launcher == "pytorchjob" else "trainjobs"
    assert len(posts) == 1 and posts[0].path.endswith(f"/namespaces/ml/{plural}")
    schemas.validate(posts[0].body)
    assert posts[0].body == body
    watches = [r for r in apiserver.calls("GET") if r.query.get("watch", [""])[0].lower() == "true"]
    assert watches and watches[0].query["fieldSelector"] == ["metadata.name=ok"]
    assert not apiserver.calls("DELETE")


def test_watch_to_failure_surfaces_failing_replica_log(apiserver, clients):
    apiserver.state.scripts["bad"] = [RUNNING, FAILED]
    label = "training.kubeflow.org/job-name"
    apiserver.state.pods = [
        {"metadata": {"name": "bad-master-0", "labels": {label: "bad", "training.kubeflow.org/replica-type": "master"}},
         "status": {"phase": "Running"}},
        {"metadata": {"name": "bad-worker-0", "labels": {label: "bad", "training.kubeflow.org/replica-type": "worker"}},
         "status": {"phase": "Failed"}},
    ]
    apiserver.state.logs["bad-worker-0"] = "\n".join(f"step {i}" for i in range(100)) + "\nRuntimeError: CUDA out of memory"
    with pytest.raises(training.TrainingFailed) as info:
        training.run_job(clients, objects.pytorchjob(_job("bad")), timeout=20, watch_seconds=5, log=lambda m: None)
    msg = str(info.value)
    assert "1 Worker replica(s) failed" in msg and "bad-worker-0 (replica worker)" in msg
    assert "CUDA out of memory" in msg and "step 99" in msg and "step 10\n" not in msg  # a tail, not the whole log
    log_reqs = [r for r in apiserver.calls("GET") if r.path.endswith("/log")]
    assert [r.path.split("/")[-2] for r in log_reqs] == ["bad-worker-0"] and log_reqs[0].query["tailLines"] == ["50"]


def test_timeout_deletes_the_job(apiserver, clients):
    apiserver.state.scripts["slow"] = [RUNNING]
    with pytest.raises(training.TrainingTimeout):
        training.run_job(clients, objects.pytorchjob(_job("slow")), timeout=1.5, watch_seconds=1, log=lambda m: None)
    deletes = apiserver.calls("DELETE")
    assert len(deletes) == 1 and deletes[0].path == "/apis/kubeflow.org/v1/namespaces/ml/pytorchjobs/slow"
    assert not apiserver.state.objects


def test_sigterm_cancels_and_deletes_the_job(apiserver, clients):
    apiserver.state.scripts["cancel"] = [RUNNING]
    timer = threading.Timer(0.8, lambda: os.kill(os.getpid(), signal.SIGTERM))
    before = signal.getsignal(signal.SIGTERM)
    timer.start()
    try:
        with pytest.raises(training.TrainingCancelled):
            training.run_job(clients, objects.trainjob(_job("cancel")), timeout=30, watch_seconds=10, log=lambda m: None)
    finally:
        timer.cancel()
    assert signal.getsignal(signal.SIGTERM) is before  # handler restored
    deletes = apiserver.calls("DELETE")
    assert [d.path for d in deletes] == ["/apis/trainer.kubeflow.org/v1alpha1/namespaces/ml/trainjobs/cancel"]


def test_invalid_body_never_reaches_the_server(apiserver, clients):
    body = objects.pytorchjob(_job("typo"))
    body["spec"]["runPolicy"]["backoffLimit"] = "zero"
    with pytest.raises(schemas.SchemaError, match="backoffLimit"):
        training.run_job(clients, body, timeout=5, log=lambda m: None)
    assert apiserver.calls() == []
