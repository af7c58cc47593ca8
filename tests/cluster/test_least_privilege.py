"""Cluster objects, least privilege and locked down.

Every pod the code or ``manifests/`` create (PyTorchJob, TrainJob, Deployment, InferenceService) runs non-root
with a fixed uid/gid, RuntimeDefault seccomp, no privilege escalation, no capabilities, a read-only root with
emptyDirs where it writes, requests and limits, no API token; the NetworkPolicy admits only the namespace's
clients to Triton's 8000/8001 and only monitoring pods to 8002; the Role grants exactly the verbs the cluster
code calls (every launcher and deploy target run against the fake API server enforcing it); credentials only
through Secret references.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from lowres_ocr.cluster import manifests, objects, schemas, training, triton

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
BASE = MANIFESTS / "base"
KUBECTL = shutil.which("kubectl")
WORKLOAD_KINDS = ("PyTorchJob", "TrainJob", "Deployment", "InferenceService")


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def built_objects() -> list[dict[str, Any]]:
    """Every object the code builds, in the variants it builds them: base manifests, GPU placement, PVC and
    S3 model repositories, one-node and multi-node jobs."""
    gpu = objects.Placement(namespace="ml", node_selector={"nvidia.com/gpu.present": "true"},
                            tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])
    out = list(manifests.workloads().values())
    for nnodes in (1, 3):
        job = objects.TrainingJob("t", "registry.example/lowres-ocr:1", nnodes=nnodes, gpus_per_node=4, placement=gpu)
        out += [objects.pytorchjob(job), objects.trainjob(job)]
    for repo in ("s3://bucket/triton", "pvc://triton/repo"):
        t = objects.TritonDeployment(model_repository=repo, placement=gpu)
        out += [objects.triton_deployment(t), objects.triton_service(t), objects.inference_service(t, repo)]
    return out + [objects.triton_network_policy("ml")]


@functools.lru_cache(maxsize=None)
def manifest_objects() -> list[dict[str, Any]]:
    """Every document of ``manifests/base`` and, where kubectl is here, of the rendered overlays (read once)."""
    out = [d for p in sorted(BASE.glob("*.yaml")) if p.name != "kustomization.yaml" for d in _docs(p)]
    if KUBECTL:
        for overlay in sorted((MANIFESTS / "overlays").iterdir()):
            text = subprocess.run([KUBECTL, "kustomize", str(overlay)], check=True, capture_output=True, text=True).stdout
            out += [d for d in yaml.safe_load_all(text) if d]
    return out


def everything() -> list[dict[str, Any]]:
    return built_objects() + manifest_objects()


def pods(obj: dict[str, Any]) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(pod-level spec, its containers) of a workload object; a TrainJob's container also carries the
    trainer's resources (the runtime's ``node`` container gets them from ``resourcesPerNode``)."""
    kind, spec = obj["kind"], obj["spec"]
    if kind == "PyTorchJob":
        for replica in spec["pytorchReplicaSpecs"].values():
            yield replica["template"]["spec"], replica["template"]["spec"]["containers"]
    elif kind == "Deployment":
        yield spec["template"]["spec"], spec["template"]["spec"]["containers"]
    elif kind == "InferenceService":
        yield spec["predictor"], [spec["predictor"]["model"]]
    elif kind == "TrainJob":
        for patch in spec["runtimePatches"]:
            for job in patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]:
                pod = job["template"]["spec"]["template"]["spec"]
                yield pod, [dict(c, resources=spec["trainer"]["resourcesPerNode"]) for c in pod["containers"]]


def workloads() -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    return [(f"{o['kind']}/{o['metadata']['name']}", pod, cs) for o in everything() if o["kind"] in WORKLOAD_KINDS
            for pod, cs in pods(o)]


def test_every_object_validates_and_every_workload_kind_is_covered() -> None:
    objs = everything()
    for obj in objs:
        schemas.validate(obj)
    assert {o["kind"] for o in objs} >= {*WORKLOAD_KINDS, "NetworkPolicy", "Role", "Secret"}
    assert {name.split("/")[0] for name, _, _ in workloads()} == set(WORKLOAD_KINDS)


def test_every_pod_runs_non_root_with_runtime_default_seccomp() -> None:
    for name, pod, _ in workloads():
        sc = pod["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert all(isinstance(sc[k], int) and sc[k] > 0 for k in ("runAsUser", "runAsGroup", "fsGroup")), name
        assert pod["serviceAccountName"] == "lowres-ocr-workload", name
        if not name.startswith("TrainJob"):  # the runtime patch schema has no such field; the SA mounts none
            assert pod["automountServiceAccountToken"] is False, name
        assert not {"hostNetwork", "hostPID", "hostIPC"} & pod.keys(), name


def test_every_container_is_locked_down_with_requests_and_limits() -> None:
    for name, _, containers in workloads():
        for c in containers:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"] == {"drop": ["ALL"]} and not sc.get("privileged"), name
            res = c["resources"]
            assert {"cpu", "memory"} <= res["requests"].keys() and {"cpu", "memory"} <= res["limits"].keys(), name


def test_writable_places_are_emptydirs_or_the_workspace() -> None:
    """A read-only root needs /tmp and /dev/shm (the python backend's shared memory, NCCL) mounted writable."""
    for name, pod, containers in workloads():
        volumes = {v["name"]: v for v in pod["volumes"]}
        for c in containers:
            mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
            assert volumes[mounts["/dev/shm"]["name"]]["emptyDir"]["medium"] == "Memory", name
            assert "sizeLimit" in volumes[mounts["/tmp"]["name"]]["emptyDir"], name
            for m in mounts.values():
                v = volumes[m["name"]]
                assert "emptyDir" in v or v["persistentVolumeClaim"]["claimName"] == "lowres-ocr-workspace", name
            assert {"name": "HOME", "value": "/tmp"} in c.get("env", []) or name.startswith("TrainJob"), name


def test_triton_serves_a_fixed_repository() -> None:
    deps = [o for o in everything() if o["kind"] == "Deployment"]
    assert deps
    for dep in deps:
        args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
        assert "--model-control-mode=none" in args and not any(a.startswith("--load-model") for a in args)
    for isvc in (o for o in everything() if o["kind"] == "InferenceService"):
        assert "args" not in isvc["spec"]["predictor"]["model"]  # the runtime's args, model control none


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return selector.keys() <= {"matchLabels"} and selector.get("matchLabels", {}).items() <= labels.items()


def admits(policy: dict[str, Any], pod_labels: dict[str, str], client_labels: dict[str, str],
           same_namespace: bool, port: int) -> bool:
    """Whether ``policy`` (podSelector / namespace-less peers only, as this project writes them) lets a client
    reach ``port`` of a pod; a pod it does not select is not restricted by it."""
    spec = policy["spec"]
    if not _selects(spec["podSelector"], pod_labels):
        return True
    for rule in spec["ingress"]:
        ports = {p["port"] for p in rule["ports"]}
        for peer in rule["from"]:
            assert peer.keys() == {"podSelector"}, f"peer {peer} reaches outside the namespace"
            if same_namespace and _selects(peer["podSelector"], client_labels) and port in ports:
                return True
    return False


@pytest.mark.parametrize("source", ["code", "manifest"])
def test_network_policy_admits_namespace_clients_and_monitoring_only(source: str) -> None:
    objs = built_objects() if source == "code" else manifest_objects()
    policy = next(o for o in objs if o["kind"] == "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    dep = next(o for o in objs if o["kind"] == "Deployment")
    pod = dep["spec"]["template"]["metadata"]["labels"]
    client, monitor = {"app": "evaluator"}, dict(objects.MONITORING)
    assert [p for p in (8000, 8001, 8002) if admits(policy, pod, client, True, p)] == [8000, 8001]
    assert [p for p in (8000, 8001, 8002) if admits(policy, pod, monitor, True, p)] == [8000, 8001, 8002]
    assert not any(admits(policy, pod, labels, False, p) for labels in (client, monitor) for p in (8000, 8001, 8002))


def _role(path: Path = BASE / "rbac.yaml") -> dict[str, Any]:
    return next(d for d in _docs(path) if d["kind"] == "Role")


def test_only_the_pipeline_account_is_bound_and_workloads_get_no_token() -> None:
    docs = _docs(BASE / "rbac.yaml")
    accounts = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceAccount"}
    bindings = [d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert [(b["kind"], [s["name"] for s in b["subjects"]]) for b in bindings] == [("RoleBinding", ["lowres-ocr-pipeline"])]
    assert accounts["lowres-ocr-workload"]["automountServiceAccountToken"] is False
    assert not any("ClusterRole" in d["kind"] for d in docs)


RUNNING = {"conditions": [{"type": "Running", "status": "True"}]}
DONE = {"PyTorchJob": {"conditions": [{"type": "Succeeded", "status": "True"}]},
        "TrainJob": {"conditions": [{"type": "Complete", "status": "True"}]}}
FAILED = {"conditions": [{"type": "Failed", "status": "True", "message": "replica failed"}]}
QUIET = {"log": lambda m: None}


def _run_launcher(apiserver: Any, clients: Any, launcher: str) -> None:
    """One job of ``launcher`` to success, one to failure (log tail), one to a timeout (delete)."""
    def job(name: str) -> dict[str, Any]:
        return training.build_job(launcher, objects.TrainingJob(f"{launcher}-{name}", "img:1", placement=objects.Placement(namespace="ml")))

    ok, bad, slow = job("ok"), job("bad"), job("slow")
    apiserver.state.scripts.update({ok["metadata"]["name"]: [RUNNING, DONE[ok["kind"]]],
                                    bad["metadata"]["name"]: [RUNNING, FAILED], slow["metadata"]["name"]: [RUNNING]})
    label = training.JOB_NAME_LABEL[bad["kind"]]
    apiserver.state.pods.append({"metadata": {"name": f"{bad['metadata']['name']}-0", "labels": {label: bad["metadata"]["name"]}},
                                 "status": {"phase": "Failed"}})
    assert training.run_job(clients, ok, timeout=20, watch_seconds=5, install_sigterm=False, **QUIET).phase == "Succeeded"
    with pytest.raises(training.TrainingFailed):
        training.run_job(clients, bad, timeout=20, watch_seconds=5, install_sigterm=False, **QUIET)
    with pytest.raises(training.TrainingTimeout):
        training.run_job(clients, slow, timeout=1.2, watch_seconds=1, install_sigterm=False, **QUIET)


def _run_deploys(apiserver: Any, clients: Any) -> None:
    """Both deploy targets twice: the first run creates, the second updates."""
    plain = objects.TritonDeployment(placement=objects.Placement(namespace="ml"))
    kserve = objects.TritonDeployment(name="lowres-ocr-isvc", placement=plain.placement)
    apiserver.state.scripts[kserve.name] = [{"conditions": [{"type": "Ready", "status": "True"}]}]
    for _ in range(2):
        for target, t in (("kubernetes", plain), ("kserve", kserve)):
            triton.deploy(clients, target, t, "s3://lowres-ocr/triton", timeout=10, poll=0.05, **QUIET)


def test_role_grants_exactly_the_calls_of_every_launcher_and_deploy_target(apiserver: Any, clients: Any) -> None:
    """With the Role enforced (403 otherwise) every path runs through, and the (group, resource, verb) set the
    cluster code called equals the set the Role grants: nothing missing, nothing more."""
    rules = _role()["rules"]
    apiserver.state.rules = rules
    for launcher in ("pytorchjob", "trainjob"):
        _run_launcher(apiserver, clients, launcher)
    _run_deploys(apiserver, clients)
    granted = {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    assert apiserver.state.verbs == granted
    assert not any("*" in x for triple in granted for x in triple)


# --- credentials -------------------------------------------------------------------------------------------

CREDENTIAL_PATTERNS = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret key": re.compile(r"(?<![A-Za-z0-9/+])(?=[A-Za-z0-9/+]*[A-Z])(?=[A-Za-z0-9/+]*[/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "GitHub / Slack token": re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{30,}|xox[abprs]-[A-Za-z0-9-]{10,})"),
    "bearer token": re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/-]{20,}"),
    "password / token assignment": re.compile(
        r"(?i)\b(password|passwd|secret[_-]?access[_-]?key|api[_-]?key|token)\b[\"']?\s*[:=]\s*[\"']?(?!REPLACE_ME|\"\"|''|$)[^\s\"']{6,}"),
}
SECRETISH = re.compile(r"(?i)(KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL)")


def credential_literals(text: str) -> list[str]:
    return [f"{what}: {m.group(0)[:12]}..." for what, rx in CREDENTIAL_PATTERNS.items() for m in rx.finditer(text)]


def test_the_credential_scan_finds_planted_literals() -> None:
    planted = ["AKIA" + "IOSFODNN7EXAMPLE", "aws_secret: " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY",
               "password: " + "hunter2hunter2", "-----BEGIN RSA " + "PRIVATE KEY-----", "token = " + "abcdef123456"]
    for text in planted:
        assert credential_literals(text), text
    assert not credential_literals("AWS_SECRET_ACCESS_KEY: REPLACE_ME\nsha256: " + "ab" * 32)


def _env_entries(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "env" and isinstance(v, list):
                yield from v
            else:
                yield from _env_entries(v)
    elif isinstance(node, list):
        for x in node:
            yield from _env_entries(x)


def test_no_credential_literals_in_manifests_or_built_objects() -> None:
    files = [p for p in sorted(MANIFESTS.rglob("*")) if p.is_file() and p.suffix in (".yaml", ".yml", ".md")]
    found = {str(p.relative_to(ROOT)): credential_literals(p.read_text()) for p in files}
    found.update({f"built {o['kind']}/{o['metadata']['name']}": credential_literals(yaml.safe_dump(o)) for o in built_objects()})
    assert files and not {k: v for k, v in found.items() if v}


def test_credentials_only_through_secret_references() -> None:
    objs = everything()
    for obj in objs:
        for e in _env_entries(obj):
            if SECRETISH.search(e["name"]):
                assert "value" not in e and "secretKeyRef" in e["valueFrom"], (obj["kind"], e)
    secrets = [o for o in objs if o["kind"] == "Secret"]
    assert secrets and all(set(s.get("stringData", {}).values()) <= {"REPLACE_ME", ""} and "data" not in s for s in secrets)
