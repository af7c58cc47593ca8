"""The Kubernetes objects the pipeline sends: PyTorchJob, TrainJob, Triton Deployment + Service, InferenceService,
and the Triton NetworkPolicy that ``manifests/base`` carries.

Pure functions returning plain dicts (what the API server receives as JSON); ``schemas.validate`` checks them.
Every pod is locked down: non-root with a fixed uid/gid, RuntimeDefault seccomp, no privilege escalation, all
capabilities dropped, a read-only root filesystem with memory/disk emptyDirs where the process writes (/tmp,
/dev/shm), requests and limits, no service-account token, credentials only through Secret references.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GPU_RESOURCE = "nvidia.com/gpu"
#: Dockerfile.triton: NGC Triton 24.10 (2.51, the release of the local server) + the python models' imports
TRITON_IMAGE = "ghcr.io/lowres-ocr/lowres-ocr-triton:0.1.0"
TRITON_PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}
APP_LABEL = "app.kubernetes.io/name"
PART_OF = {"app.kubernetes.io/part-of": "lowres-ocr"}
NON_ROOT_UID = 1000  # the NGC Triton image's triton-server user; the project image runs as any uid
#: label of the pods allowed to scrape Triton's metrics port (the NetworkPolicy admits no other)
MONITORING = {"app.kubernetes.io/component": "monitoring"}
#: label of the Triton Deployment's pods (the NetworkPolicy selects them by it)
TRITON_COMPONENT = {"app.kubernetes.io/component": "inference-server"}


@dataclass
class Placement:
    """Where pods run and what they mount (shared by training and serving)."""

    namespace: str = "lowres-ocr"
    service_account: str = "lowres-ocr-workload"  # no Role bound, no token mounted (manifests/base/rbac.yaml)
    pvc: str = "lowres-ocr-workspace"
    mount_path: str = "/workspace"
    s3_secret: str = "lowres-ocr-s3"  # keys: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL_S3
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, str]] = field(default_factory=list)


@dataclass
class TrainingJob:
    name: str
    image: str
    preset: str = "gpu"
    nnodes: int = 2
    nproc_per_node: int = 1
    gpus_per_node: int = 1
    output_dir: str = "/workspace/runs/train"
    overrides: list[str] = field(default_factory=list)
    cpu: str = "4"
    memory: str = "16Gi"
    placement: Placement = field(default_factory=Placement)


def _apply_placement(pod_spec: dict[str, Any], p: Placement) -> None:
    """Node selector and tolerations of ``p`` into a pod-level spec (only the keys that are set)."""
    if p.node_selector:
        pod_spec["nodeSelector"] = dict(p.node_selector)
    if p.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in p.tolerations]


def _s3_env(secret: str) -> list[dict[str, Any]]:
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3")
    return [{"name": k, "valueFrom": {"secretKeyRef": {"name": secret, "key": k, "optional": k == "AWS_ENDPOINT_URL_S3"}}}
            for k in keys]


def _resources(cpu: str, memory: str, gpus: int) -> dict[str, Any]:
    limits: dict[str, Any] = {"cpu": cpu, "memory": memory}
    if gpus > 0:
        limits[GPU_RESOURCE] = gpus
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": limits}


def _pod_security() -> dict[str, Any]:
    """Pod-level: a fixed non-root uid/gid (the PVC's files owned by its group), RuntimeDefault seccomp."""
    return {"runAsNonRoot": True, "runAsUser": NON_ROOT_UID, "runAsGroup": NON_ROOT_UID, "fsGroup": NON_ROOT_UID,
            "seccompProfile": {"type": "RuntimeDefault"}}


def container_security() -> dict[str, Any]:
    """Container-level: no privilege escalation, no capabilities, read-only root filesystem."""
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def _scratch_volumes(shm: str, tmp: str) -> list[dict[str, Any]]:
    """The writable places of a read-only-root pod: /dev/shm in memory (NCCL, DataLoader workers, Triton's
    python backend) and /tmp on disk (temp files, HOME caches, Triton's S3 model download)."""
    return [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": shm}},
            {"name": "tmp", "emptyDir": {"sizeLimit": tmp}}]


def _scratch_mounts() -> list[dict[str, Any]]:
    return [{"name": "dshm", "mountPath": "/dev/shm"}, {"name": "tmp", "mountPath": "/tmp"}]


def _scratch_env() -> list[dict[str, Any]]:
    """Caches and config under the writable /tmp (HOME), no .pyc writes into the read-only image."""
    return [{"name": "HOME", "value": "/tmp"}, {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}]


def train_args(job: TrainingJob) -> list[str]:
    """``torch.distributed.run`` arguments inside a pod: topology comes from the operator's PET_* environment."""
    args = ["-m", "torch.distributed.run", "-m", "lowres_ocr.train", "--config", job.preset, "--output-dir", job.output_dir]
    for o in job.overrides:
        args += ["--set", o]
    return args


def _train_env(p: Placement) -> list[dict[str, Any]]:
    return _s3_env(p.s3_secret) + [{"name": "OMP_NUM_THREADS", "value": "1"}, *_scratch_env()]


def _train_container(job: TrainingJob, name: str) -> dict[str, Any]:
    p = job.placement
    return {
        "name": name,
        "image": job.image,
        "command": ["python"],
        "args": train_args(job),
        "workingDir": "/app",
        "env": _train_env(p),
        "resources": _resources(job.cpu, job.memory, job.gpus_per_node),
        "securityContext": container_security(),
        "volumeMounts": [{"name": "workspace", "mountPath": p.mount_path}, *_scratch_mounts()],
    }


def _train_pod_spec(job: TrainingJob, container: str) -> dict[str, Any]:
    p = job.placement
    spec: dict[str, Any] = {
        "serviceAccountName": p.service_account,
        "automountServiceAccountToken": False,
        "securityContext": _pod_security(),
        "containers": [_train_container(job, container)],
        "volumes": [{"name": "workspace", "persistentVolumeClaim": {"claimName": p.pvc}}, *_scratch_volumes("8Gi", "4Gi")],
    }
    _apply_placement(spec, p)
    return spec


def pytorchjob(job: TrainingJob) -> dict[str, Any]:
    """PyTorchJob kubeflow.org/v1: one Master + (nnodes - 1) Workers, ``nprocPerNode`` processes each."""
    if job.nnodes < 1 or job.nproc_per_node < 1:
        raise ValueError("nnodes and nproc_per_node must be >= 1")
    replica = lambda n: {  # noqa: E731
        "replicas": n,
        "restartPolicy": "OnFailure",
        # the operator requires the container to be called "pytorch"
        "template": {"metadata": {"labels": dict(PART_OF)}, "spec": _train_pod_spec(job, "pytorch")},
    }
    specs = {"Master": replica(1)}
    if job.nnodes > 1:
        specs["Worker"] = replica(job.nnodes - 1)
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": job.name, "namespace": job.placement.namespace, "labels": dict(PART_OF)},
        "spec": {
            "nprocPerNode": str(job.nproc_per_node),
            "runPolicy": {"backoffLimit": 0, "cleanPodPolicy": "None", "ttlSecondsAfterFinished": 86400},
            "pytorchReplicaSpecs": specs,
        },
    }


def trainjob(job: TrainingJob, runtime: str = "torch-distributed") -> dict[str, Any]:
    """TrainJob trainer.kubeflow.org/v1alpha1 on the ``torch-distributed`` ClusterTrainingRuntime (Trainer v2.3).

    The runtime's replicated job and container are both called ``node``; the PVC, the scratch volumes, the
    security contexts and placement are added through ``runtimePatches`` (whose pod schema has no
    ``automountServiceAccountToken``: the workload ServiceAccount itself mounts no token).
    """
    p = job.placement
    pod_patch: dict[str, Any] = {
        "volumes": [{"name": "workspace", "persistentVolumeClaim": {"claimName": p.pvc}}, *_scratch_volumes("8Gi", "4Gi")],
        "containers": [{
            "name": "node",
            "securityContext": container_security(),
            "volumeMounts": [{"name": "workspace", "mountPath": p.mount_path}, *_scratch_mounts()],
        }],
        "securityContext": _pod_security(),
        "serviceAccountName": p.service_account,
    }
    _apply_placement(pod_patch, p)
    limits = _resources(job.cpu, job.memory, job.gpus_per_node)
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": job.name, "namespace": p.namespace, "labels": dict(PART_OF)},
        "spec": {
            "runtimeRef": {"name": runtime, "apiGroup": "trainer.kubeflow.org", "kind": "ClusterTrainingRuntime"},
            "trainer": {
                "image": job.image,
                "command": ["python"],
                "args": train_args(job),
                "numNodes": job.nnodes,
                "numProcPerNode": job.nproc_per_node,
                "resourcesPerNode": limits,
                "env": _train_env(p),
            },
            "runtimePatches": [{
                "manager": "lowres-ocr",
                "trainingRuntimeSpec": {"template": {"spec": {"replicatedJobs": [
                    {"name": "node", "template": {"spec": {"template": {"spec": pod_patch}}}}
                ]}}},
            }],
        },
    }


@dataclass
class TritonDeployment:
    name: str = "lowres-ocr-triton"
    image: str = TRITON_IMAGE
    replicas: int = 1
    gpus: int = 1
    model_repository: str = "s3://lowres-ocr/triton"  # s3://... or a path under the PVC mount (pvc://<subdir>)
    cpu: str = "2"
    memory: str = "4Gi"
    placement: Placement = field(default_factory=Placement)


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period, "failureThreshold": failures, "timeoutSeconds": 2}


def _model_source(t: TritonDeployment) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(repository path or URI, env, volumes, mounts) for ``t.model_repository`` (pvc://dir read-only, or s3://)."""
    p = t.placement
    if t.model_repository.startswith("pvc://"):
        repo = f"{p.mount_path}/{t.model_repository[len('pvc://'):].strip('/')}"
        return (repo, [], [{"name": "workspace", "persistentVolumeClaim": {"claimName": p.pvc, "readOnly": True}}],
                [{"name": "workspace", "mountPath": p.mount_path, "readOnly": True}])
    if t.model_repository.startswith("s3://"):
        return t.model_repository, _s3_env(p.s3_secret) + [{"name": "AWS_DEFAULT_REGION", "value": "us-east-1"}], [], []
    raise ValueError(f"model repository must be s3://... or pvc://<dir>, got {t.model_repository!r}")


def triton_args(repo: str) -> list[str]:
    """tritonserver flags: the repository, fixed ports, and no model control (nothing loads or unloads a model
    through the API: the repository as deployed is what is served)."""
    return [f"--model-repository={repo}", "--model-control-mode=none", "--strict-readiness=true",
            "--exit-timeout-secs=30", f"--http-port={TRITON_PORTS['http']}", f"--grpc-port={TRITON_PORTS['grpc']}",
            f"--metrics-port={TRITON_PORTS['metrics']}"]


def _triton_container(t: TritonDeployment, repo: str, env: list[dict[str, Any]],
                      mounts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": "tritonserver",
        "image": t.image,
        "command": ["tritonserver"],
        "args": triton_args(repo),
        "ports": [{"name": n, "containerPort": v, "protocol": "TCP"} for n, v in TRITON_PORTS.items()],
        "env": env + _scratch_env(),
        "resources": _resources(t.cpu, t.memory, t.gpus),
        "livenessProbe": _probe("/v2/health/live", 10, 3),
        "readinessProbe": _probe("/v2/health/ready", 5, 3),
        "startupProbe": _probe("/v2/health/ready", 10, 60),  # up to 10 min to pull and load the models
        "securityContext": container_security(),
        "volumeMounts": _scratch_mounts() + mounts,
    }


def triton_deployment(t: TritonDeployment) -> dict[str, Any]:
    """Deployment running tritonserver: HTTP/gRPC/metrics ports, health probes, locked-down pod (module docstring)."""
    p = t.placement
    labels = {APP_LABEL: t.name, **PART_OF}
    repo, env, volumes, mounts = _model_source(t)
    pod: dict[str, Any] = {
        "serviceAccountName": p.service_account,
        "automountServiceAccountToken": False,
        "securityContext": _pod_security(),
        "containers": [_triton_container(t, repo, env, mounts)],
        "volumes": _scratch_volumes("1Gi", "2Gi") + volumes,
    }
    _apply_placement(pod, p)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": t.name, "namespace": p.namespace, "labels": labels},
        "spec": {
            "replicas": t.replicas,
            "selector": {"matchLabels": {APP_LABEL: t.name}},
            "template": {"metadata": {"labels": {**labels, **TRITON_COMPONENT}}, "spec": pod},
        },
    }


def triton_network_policy(namespace: str = "lowres-ocr") -> dict[str, Any]:
    """NetworkPolicy on every Triton Deployment pod of the namespace: HTTP/gRPC (8000/8001) from pods of the
    same namespace only, metrics (8002) only from its pods labelled ``MONITORING``; nothing else gets in."""
    def port(name: str) -> list[dict[str, Any]]:
        return [{"protocol": "TCP", "port": TRITON_PORTS[name]}]

    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "lowres-ocr-triton", "namespace": namespace, "labels": dict(PART_OF)},
        "spec": {
            "podSelector": {"matchLabels": {**TRITON_COMPONENT, **PART_OF}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [{"podSelector": {}}], "ports": port("http") + port("grpc")},
                {"from": [{"podSelector": {"matchLabels": dict(MONITORING)}}], "ports": port("metrics")},
            ],
        },
    }


def triton_service(t: TritonDeployment) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": t.name, "namespace": t.placement.namespace, "labels": {APP_LABEL: t.name, **PART_OF}},
        "spec": {
            "type": "ClusterIP",
            "selector": {APP_LABEL: t.name},
            "ports": [{"name": n, "port": v, "targetPort": n, "protocol": "TCP"} for n, v in TRITON_PORTS.items()],
        },
    }


def inference_service(t: TritonDeployment, storage_uri: str) -> dict[str, Any]:
    """KServe InferenceService serving the model repository with the Triton runtime (KServe v2 protocol).

    The runtime's own args are kept (a model ``args`` list would replace them); Triton's model control mode
    defaults to none. ``image`` replaces the runtime's stock Triton image by ``t.image`` (Dockerfile.triton: the
    python models' imports); no ``runtimeVersion``, which would retag that image. KServe adds its
    storage-initializer container, configured by KServe, not here.
    """
    p = t.placement
    model: dict[str, Any] = {
        "modelFormat": {"name": "triton"},
        "protocolVersion": "v2",
        "image": t.image,
        "storageUri": storage_uri,
        "env": _scratch_env(),
        "resources": _resources(t.cpu, t.memory, t.gpus),
        "securityContext": container_security(),
        "volumeMounts": _scratch_mounts(),
    }
    predictor: dict[str, Any] = {
        "serviceAccountName": p.service_account,
        "automountServiceAccountToken": False,
        "securityContext": _pod_security(),
        "minReplicas": t.replicas,
        "model": model,
        "volumes": _scratch_volumes("1Gi", "2Gi"),
    }
    _apply_placement(predictor, p)
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": t.name, "namespace": p.namespace, "labels": dict(PART_OF),
                     "annotations": {"serving.kserve.io/deploymentMode": "RawDeployment"}},
        "spec": {"predictor": predictor},
    }
