"""Every manifest (base and both overlays) validates against the real schemas; the base equals the builders' output."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from lowres_ocr.cluster import manifests, schemas

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "manifests" / "base"
KUBECTL = shutil.which("kubectl")
KUSTOMIZE = shutil.which("kustomize")


def _docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def _render(path: Path) -> list[dict]:
    cmd = [KUSTOMIZE, "build", str(path)] if KUSTOMIZE else [KUBECTL, "kustomize", str(path)]
    return _docs(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def test_base_files_validate():
    listed = yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"]
    seen = []
    for name in listed:
        for doc in _docs((BASE / name).read_text()):
            schemas.validate(doc)
            seen.append(doc["kind"])
    assert sorted(seen) == sorted(["Namespace", "ServiceAccount", "ServiceAccount", "Role", "RoleBinding",
                                   "PersistentVolumeClaim", "Secret", "PyTorchJob", "TrainJob", "Deployment", "Service",
                                   "InferenceService", "NetworkPolicy"])


def test_generated_base_matches_the_code():
    for name, obj in manifests.workloads().items():
        assert _docs((BASE / name).read_text()) == [obj], f"{name} is stale: python -m lowres_ocr.cluster.manifests"


def test_rbac_is_namespaced_and_least_privilege():
    docs = {d["kind"]: d for d in _docs((BASE / "rbac.yaml").read_text())}
    assert "ClusterRole" not in docs and "ClusterRoleBinding" not in docs
    rules = {(g, r): set(rule["verbs"]) for rule in docs["Role"]["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert rules == {
        ("kubeflow.org", "pytorchjobs"): {"create", "watch", "delete"},  # tests/cluster/test_least_privilege.py
        ("trainer.kubeflow.org", "trainjobs"): {"create", "watch", "delete"},
        ("apps", "deployments"): {"create", "get", "patch"},
        ("", "services"): {"create", "patch"},  # applied, never read (tests/cluster/test_apply.py)
        ("serving.kserve.io", "inferenceservices"): {"create", "get", "patch"},
        ("", "pods"): {"list"},
        ("", "pods/log"): {"get"},
    }
    assert not any("*" in v for v in rules.values()) and not any("*" in k[1] for k in rules)


def test_secret_is_a_template():
    secret = _docs((BASE / "secret-s3.template.yaml").read_text())[0]
    assert set(secret["stringData"].values()) <= {"REPLACE_ME", ""}


@pytest.mark.skipif(not (KUBECTL or KUSTOMIZE), reason="needs kubectl or kustomize to render the overlays")
@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_overlays_render_and_validate(overlay):
    docs = _render(ROOT / "manifests" / "overlays" / overlay)
    for doc in docs:
        schemas.validate(doc)
        assert doc["metadata"].get("namespace", "lowres-ocr") == "lowres-ocr"
    by_kind = {d["kind"]: d for d in docs}
    master = by_kind["PyTorchJob"]["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    dep = by_kind["Deployment"]["spec"]["template"]["spec"]
    if overlay == "gpu":
        assert master["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert master["tolerations"][0]["key"] == "nvidia.com/gpu" and dep["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert master["containers"][0]["args"][5] == "gpu"
    else:
        assert "nvidia.com/gpu" not in master["containers"][0]["resources"]["limits"]
        assert master["containers"][0]["image"].endswith("-cpu") and by_kind["PyTorchJob"]["spec"]["nprocPerNode"] == "2"
