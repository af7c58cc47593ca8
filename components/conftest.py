"""Shared fixtures of the component tests: small real inputs built with the project's own functions."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `components` is imported as a package from the repository root
sys.path.insert(0, str(ROOT / "tests" / "cluster"))  # the fake API server
FIXTURE_CROPS = ROOT / "tests" / "fixtures" / "real_crops"


def artifact(cls, path: Path, name: str = "a"):
    """A KFP artifact object pointing at a local path (what the executor passes to a component function)."""
    return cls(name=name, uri=str(path))


@pytest.fixture(autouse=True)
def _project_root(monkeypatch):
    monkeypatch.setenv("LOWRES_OCR_ROOT", str(ROOT))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A dataset artifact like version_data's: a pairs set (synthetic, TextZoom layout) and a words set (real crops)."""
    from lowres_ocr.data.synth import synthesize

    root = tmp_path_factory.mktemp("data")
    synthesize(root / "textzoom_train2", 60, seed=3)
    synthesize(root / "textzoom_easy", 24, seed=4)
    words = root / "svt_test"
    (words / "images").mkdir(parents=True)
    rows = [ln for ln in (FIXTURE_CROPS / "labels.tsv").read_text(encoding="utf-8").splitlines() if ln.strip()][:30]
    for row in rows:
        rel = row.split("\t")[0]
        shutil.copyfile(FIXTURE_CROPS / rel, words / rel)
    (words / "labels.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def lmdb_dir(data_dir, tmp_path_factory) -> Path:
    from lowres_ocr.data.steps import build_lmdbs

    out = tmp_path_factory.mktemp("lmdb") / "lmdb"
    build_lmdbs(data_dir, out)
    return out


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """A model artifact like train's: a small random-init checkpoint at model.pt."""
    import torch

    from lowres_ocr.network import build_model, tiny_config
    from lowres_ocr.network.model import save_checkpoint

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("model")
    save_checkpoint(out / "model.pt", build_model(tiny_config()))
    return out


@pytest.fixture(scope="session")
def onnx_dir(model_dir, data_dir, tmp_path_factory) -> Path:
    from lowres_ocr.export.steps import export_onnx

    out = tmp_path_factory.mktemp("onnx")
    export_onnx(model_dir / "model.pt", out, data_dir / "svt_test", 20)
    return out


@pytest.fixture(scope="session")
def evaluation(model_dir, data_dir, tmp_path_factory) -> tuple[Path, dict]:
    """(predictions artifact dir, step result) of the evaluation of the tiny model, smoke crops from textzoom_easy."""
    from lowres_ocr.evaluation.steps import evaluate

    base = tmp_path_factory.mktemp("evaluate")
    pred = base / "predictions"
    pred.mkdir()
    info = evaluate(model_dir / "model.pt", data_dir, ["textzoom_easy", "svt_test"], base / "report", 0.0,
                    smoke_set="textzoom_easy", smoke_count=12, predictions_out=pred)
    return pred, info


@pytest.fixture
def kubeconfig(apiserver, tmp_path, monkeypatch) -> Path:
    """A kubeconfig pointing at the fake API server, so the production ``api.connect()`` path is used."""
    path = tmp_path / "kubeconfig"
    path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: "{apiserver.url}"}}}}]
users: [{{name: u, user: {{token: test-token}}}}]
contexts: [{{name: c, context: {{cluster: fake, user: u, namespace: ml}}}}]
current-context: c
""")
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return path


@pytest.fixture
def apiserver():
    from fake_apiserver import FakeApiServer

    with FakeApiServer() as server:
        yield server
