"""The lowres-ocr Kubeflow pipeline: data → LMDB → train → evaluate (gate) → ONNX → [TensorRT] → Triton → smoke test.

The gate compares the trained candidate with the shipped model (``baseline_model``) set by set on the same crops;
evaluate's ``deploy_model`` output is the checkpoint the rest of the pipeline exports and serves: the candidate when
it passed, else the shipped model (the pipeline keeps serving it). Nothing is deployed only when there is neither.

Compile: ``kfp dsl compile --py pipelines/train_deploy.py --output train_deploy.yaml``
Run here: ``lowres-ocr pipeline run-local`` (kfp.local SubprocessRunner; kubernetes settings are ignored there).
"""


import sys
from typing import Any, NamedTuple
from pathlib import Path

from kfp import dsl, kubernetes

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `components` lives at the repository root

from components.build_lmdb.component import build_lmdb  # noqa: E402
from components.build_triton_repo.component import build_triton_repo  # noqa: E402
from components.convert_tensorrt.component import convert_tensorrt  # noqa: E402
from components.deploy_triton.component import deploy_triton  # noqa: E402
from components.evaluate.component import evaluate  # noqa: E402
from components.export_onnx.component import export_onnx  # noqa: E402
from components.image import PROJECT_IMAGE  # noqa: E402
from components.smoke_test.component import smoke_test  # noqa: E402
from components.train.component import train  # noqa: E402
from components.version_data.component import version_data  # noqa: E402

PIPELINE_NAME = "lowres-ocr-train-deploy"
WORKSPACE_PVC = "lowres-ocr-workspace"
WORKSPACE_MOUNT = "/workspace"
S3_SECRET = "lowres-ocr-s3"
S3_KEYS = {"AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
           "AWS_ENDPOINT_URL_S3": "AWS_ENDPOINT_URL_S3"}
GPU_NODE_LABEL = ("nvidia.com/gpu.present", "true")
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
TRAIN_SETS = "textzoom_train2,iiit5k_train,ic15_train"
EVAL_SETS = "textzoom_easy,svt_test"


def _on_cluster(task: dsl.PipelineTask, image: Any, s3: bool = False, pvc: bool = False,
                gpu: bool = False) -> dsl.PipelineTask:
    """Cluster settings of a task (kfp.local ignores the kubernetes ones; see the README)."""
    task.set_container_image(image)
    if s3:
        kubernetes.use_secret_as_env(task, S3_SECRET, S3_KEYS, optional=True)
    if pvc:
        kubernetes.mount_pvc(task, WORKSPACE_PVC, WORKSPACE_MOUNT)
    if gpu:
        kubernetes.add_node_selector(task, *GPU_NODE_LABEL)
        kubernetes.add_toleration(task, **GPU_TOLERATION)
    return task


def _serve(repo: dsl.PipelineTask, ev: dsl.PipelineTask, image: Any, deploy_target: Any, storage_uri: Any, namespace: Any,
           gpus: Any, triton_image: Any) -> None:
    """deploy_triton then smoke_test (never cached: a deployment is an action, not a result)."""
    deployed = _on_cluster(deploy_triton(repo=repo.outputs["repo"], deploy_target=deploy_target, storage_uri=storage_uri,
                                         namespace=namespace, gpus=gpus, triton_image=triton_image), image, s3=True, pvc=True)
    deployed.set_caching_options(False)
    smoke = _on_cluster(smoke_test(endpoint=deployed.outputs["endpoint"], predictions=ev.outputs["predictions"],
                                   repo=repo.outputs["repo"], model=ev.outputs["deploy_model"]), image)
    smoke.set_caching_options(False)


@dsl.pipeline(name=PIPELINE_NAME, description="Train, evaluate, export and serve the low-resolution text recognizer.")
def train_deploy(
    dataset_revision: str = "",
    preset: str = "default",
    train_steps: int = 0,
    init_from: str = "model/lowres_ocr.pt",
    nnodes: int = 1,
    nproc_per_node: int = 2,
    launcher: str = "local",
    gpus: int = 0,
    min_accuracy: float = 50.0,
    baseline_report: str = "model/eval/report.json",
    baseline_model: str = "model/lowres_ocr.pt",
    gate_tolerance: float = 0.0,
    eval_sets: str = EVAL_SETS,
    eval_limit: int = 0,
    eval_modes: str = "",
    deploy_target: str = "local",
    serve_page: bool = True,
    storage_uri: str = "s3://lowres-ocr/triton",
    namespace: str = "lowres-ocr",
    image: str = PROJECT_IMAGE,
    triton_image: str = "ghcr.io/lowres-ocr/lowres-ocr-triton:0.1.0",
) -> NamedTuple("Outputs", [("data", dsl.Dataset), ("lmdb", dsl.Dataset), ("model", dsl.Model), ("report", dsl.HTML),
                            ("predictions", dsl.Dataset), ("metrics", dsl.Metrics),
                                     ("deploy_model", dsl.Model)]):
    data = _on_cluster(version_data(dataset_revision=dataset_revision, train_sets=TRAIN_SETS, eval_sets=eval_sets), image, s3=True)
    data.set_display_name("version-data (dvc pull)")
    lmdb = _on_cluster(build_lmdb(data=data.outputs["data"]), image)
    trained = train(lmdb=lmdb.outputs["lmdb"], preset=preset, launcher=launcher, nnodes=nnodes, nproc_per_node=nproc_per_node,
                    gpus=gpus, steps=train_steps, init_from=init_from, image=image, namespace=namespace)
    # GPU limit from the `gpus` parameter + GPU toleration; no GPU node selector here: a fixed selector would pin
    # CPU-only runs (gpus=0, or a launcher that only submits a PyTorchJob/TrainJob) onto GPU nodes.
    _on_cluster(trained, image, s3=True, pvc=True)
    kubernetes.add_toleration(trained, **GPU_TOLERATION)
    trained.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(gpus)
    ev = _on_cluster(evaluate(model=trained.outputs["model"], data=data.outputs["data"], min_accuracy=min_accuracy,
                              sets=eval_sets, limit=eval_limit, modes=eval_modes,
                              baseline_report=baseline_report, baseline_model=baseline_model,
                              tolerance=gate_tolerance), image)
    with dsl.If(ev.outputs["Output"] == True, name="deploy-gate"):  # noqa: E712 (a pipeline condition, not Python)
        onnx = _on_cluster(export_onnx(model=ev.outputs["deploy_model"], data=data.outputs["data"]), image)
        # Each branch serves its own repository: kfp.local (2.17) cannot run dsl.OneOf, so deploy + smoke test
        # appear once per branch instead of once after a OneOf; only one branch runs.
        with dsl.If(gpus > 0, name="tensorrt-when-gpus"):
            plan = _on_cluster(convert_tensorrt(onnx_model=onnx.outputs["onnx_model"]), image, gpu=True)
            plan.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
            repo_trt = _on_cluster(build_triton_repo(onnx_model=onnx.outputs["onnx_model"], plan=plan.outputs["plan"],
                                                     deploy_target=deploy_target, page=serve_page), image)
            _serve(repo_trt, ev, image, deploy_target, storage_uri, namespace, gpus, triton_image)
        with dsl.Else(name="onnx-only"):
            repo_onnx = _on_cluster(build_triton_repo(onnx_model=onnx.outputs["onnx_model"], deploy_target=deploy_target,
                                                      page=serve_page), image)
            _serve(repo_onnx, ev, image, deploy_target, storage_uri, namespace, gpus, triton_image)
    outputs = NamedTuple("Outputs", [("data", dsl.Dataset), ("lmdb", dsl.Dataset), ("model", dsl.Model), ("report", dsl.HTML),
                                     ("predictions", dsl.Dataset), ("metrics", dsl.Metrics),
                                     ("deploy_model", dsl.Model)])
    return outputs(data.outputs["data"], lmdb.outputs["lmdb"], trained.outputs["model"], ev.outputs["report"],
                   ev.outputs["predictions"], ev.outputs["metrics"], ev.outputs["deploy_model"])
