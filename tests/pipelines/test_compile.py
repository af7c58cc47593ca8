"""`kfp dsl compile` of pipelines/train_deploy.py and what the compiled YAML must contain."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
STEPS = ["version-data", "build-lmdb", "train", "evaluate", "export-onnx", "convert-tensorrt", "build-triton-repo",
         "deploy-triton", "smoke-test"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> tuple[dict, dict]:
    out = tmp_path_factory.mktemp("compile") / "train_deploy.yaml"
    kfp = Path(sys.executable).with_name("kfp")
    subprocess.run([str(kfp), "dsl", "compile", "--py", str(ROOT / "pipelines" / "train_deploy.py"), "--output", str(out)],
                   check=True, cwd=ROOT, capture_output=True, text=True)
    spec, platform = list(yaml.safe_load_all(out.read_text()))
    return spec, platform


def _all_tasks(spec: dict) -> dict[str, dict]:
    tasks = dict(spec["root"]["dag"]["tasks"])
    for comp in spec["components"].values():
        tasks.update(comp.get("dag", {}).get("tasks", {}))
    return tasks


def test_all_nine_steps(compiled):
    spec, _ = compiled
    executors = spec["deploymentSpec"]["executors"]
    for step in STEPS:
        assert f"exec-{step}" in executors, step
        container = executors[f"exec-{step}"]["container"]
        assert "from lowres_ocr" in " ".join(container["command"] + container["args"])  # a thin call into the package
        assert executors[f"exec-{step}"]["container"]["image"] == "{{$.inputs.parameters['pipelinechannel--image']}}"
    params = spec["root"]["inputDefinitions"]["parameters"]
    for p in ("dataset_revision", "preset", "nnodes", "nproc_per_node", "launcher", "gpus", "min_accuracy", "deploy_target", "image"):
        assert p in params


def test_deploy_is_gated_and_tensorrt_needs_gpus(compiled):
    spec, _ = compiled
    tasks = _all_tasks(spec)
    gate = tasks["condition-1"]
    assert gate["triggerPolicy"]["condition"] == "inputs.parameter_values['pipelinechannel--evaluate-Output'] == true"
    assert "evaluate" in gate["dependentTasks"]
    gate_dag = spec["components"][gate["componentRef"]["name"]]["dag"]["tasks"]
    assert "export-onnx" in gate_dag
    # what is exported and served is the checkpoint the gate chose (candidate or shipped), not train's output
    assert gate_dag["export-onnx"]["inputs"]["artifacts"]["model"] == {"componentInputArtifact": "pipelinechannel--evaluate-deploy_model"}
    assert gate["inputs"]["artifacts"]["pipelinechannel--evaluate-deploy_model"]["taskOutputArtifact"] == \
        {"producerTask": "evaluate", "outputArtifactKey": "deploy_model"}
    ev_params = tasks["evaluate"]["inputs"]["parameters"]
    assert ev_params["baseline_model"]["componentInputParameter"] == "baseline_model"
    assert ev_params["tolerance"]["componentInputParameter"] == "gate_tolerance"
    defaults = spec["root"]["inputDefinitions"]["parameters"]
    assert defaults["baseline_report"]["defaultValue"] == "model/eval/report.json"
    assert defaults["baseline_model"]["defaultValue"] == "model/lowres_ocr.pt"
    conds = {t["triggerPolicy"]["condition"]: t for t in tasks.values() if "triggerPolicy" in t}
    trt = conds["int(inputs.parameter_values['pipelinechannel--gpus']) > 0"]
    trt_tasks = spec["components"][trt["componentRef"]["name"]]["dag"]["tasks"]
    assert {"convert-tensorrt", "build-triton-repo", "deploy-triton", "smoke-test"} <= set(trt_tasks)
    other = conds["!(int(inputs.parameter_values['pipelinechannel--gpus']) > 0)"]
    other_tasks = spec["components"][other["componentRef"]["name"]]["dag"]["tasks"]
    assert {"build-triton-repo-2", "deploy-triton-2", "smoke-test-2"} == set(other_tasks)
    assert "convert-tensorrt" not in set(spec["root"]["dag"]["tasks"]) | set(gate_dag)
    for name in ("deploy-triton", "deploy-triton-2", "smoke-test", "smoke-test-2"):
        assert tasks[name]["cachingOptions"] == {}, name  # caching off for actions
    assert tasks["train"]["cachingOptions"] == {"enableCache": True}


def test_kubernetes_platform_settings(compiled):
    spec, platform = compiled
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    train = k8s["exec-train"]
    assert train["pvcMount"][0]["mountPath"] == "/workspace" and train["pvcMount"][0]["constant"] == "lowres-ocr-workspace"
    assert train["secretAsEnv"][0]["secretName"] == "lowres-ocr-s3"
    assert {e["envVar"] for e in train["secretAsEnv"][0]["keyToEnv"]} == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3"}
    assert train["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    trt = k8s["exec-convert-tensorrt"]
    assert trt["nodeSelector"] == {"labels": {"nvidia.com/gpu.present": "true"}} and trt["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert "secretAsEnv" in k8s["exec-version-data"] and "pvcMount" in k8s["exec-deploy-triton"]
    res = spec["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]["accelerator"]
    assert res["resourceType"] == "nvidia.com/gpu" and res["resourceCount"] == "{{$.inputs.parameters['pipelinechannel--gpus']}}"
    trt_res = spec["deploymentSpec"]["executors"]["exec-convert-tensorrt"]["container"]["resources"]["accelerator"]
    assert trt_res["resourceCount"] == "1"


def test_cli_compile_is_the_same_package(compiled, tmp_path):
    out = tmp_path / "p.yaml"
    subprocess.run([sys.executable, "-m", "lowres_ocr.cli", "pipeline", "compile", "--output", str(out)], check=True, cwd=ROOT,
                   capture_output=True)
    assert list(yaml.safe_load_all(out.read_text())) == list(compiled)


def test_page_endpoint_is_built_and_smoke_tested(compiled):
    """``serve_page`` (default on) reaches both repository steps; both smoke tests get that repository and the
    checkpoint the gate chose (the in-process reference of the page check)."""
    spec, _ = compiled
    tasks = _all_tasks(spec)
    assert spec["root"]["inputDefinitions"]["parameters"]["serve_page"] == \
        {"defaultValue": True, "isOptional": True, "parameterType": "BOOLEAN"}
    for suffix in ("", "-2"):
        page = tasks[f"build-triton-repo{suffix}"]["inputs"]["parameters"]["page"]
        assert page == {"componentInputParameter": "pipelinechannel--serve_page"}
        smoke = tasks[f"smoke-test{suffix}"]["inputs"]["artifacts"]
        assert smoke["repo"]["taskOutputArtifact"] == {"producerTask": f"build-triton-repo{suffix}", "outputArtifactKey": "repo"}
        assert smoke["model"] == {"componentInputArtifact": "pipelinechannel--evaluate-deploy_model"}
