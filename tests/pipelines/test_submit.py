"""``lowres-ocr pipeline submit -p KEY=VALUE``: values typed by the pipeline's parameter types."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lowres_ocr.pipeline.commands import app

ROOT = Path(__file__).resolve().parents[2]


class FakeClient:
    """Stands in for kfp.Client: records the run it is asked to create."""

    created: list[dict[str, Any]] = []

    def __init__(self, host: str) -> None:
        self.host = host

    def create_run_from_pipeline_package(self, package: str, arguments: dict[str, Any], run_name: Any,
                                         experiment_name: str) -> Any:
        FakeClient.created.append(arguments)
        return type("Run", (), {"run_id": "r1"})()


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    from lowres_ocr.pipeline.commands import compile_pipeline

    return compile_pipeline(ROOT, tmp_path_factory.mktemp("pkg") / "train_deploy.yaml")


def _submit(package: Path, monkeypatch, *params: str):
    import kfp

    monkeypatch.setattr(kfp, "Client", FakeClient)
    FakeClient.created.clear()
    args = ["submit", "--host", "http://127.0.0.1:1", "-f", str(package)]
    for p in params:
        args += ["-p", p]
    return CliRunner().invoke(app, args)


def test_values_follow_the_parameter_types_and_empty_strings_stay(package, monkeypatch):
    res = _submit(package, monkeypatch, "baseline_report=", "train_steps=10", "min_accuracy=55", "preset=0123",
                  "gate_tolerance=0.5", "eval_sets=textzoom_easy")
    assert res.exit_code == 0, res.output
    assert FakeClient.created == [{"baseline_report": "", "train_steps": 10, "min_accuracy": 55.0, "preset": "0123",
                                   "gate_tolerance": 0.5, "eval_sets": "textzoom_easy"}]
    assert isinstance(FakeClient.created[0]["min_accuracy"], float)


@pytest.mark.parametrize("param, message", [("train_steps=ten", "train_steps"), ("min_accuracy=", "min_accuracy"),
                                            ("nnodes=1.5", "nnodes"), ("no_such=1", "no_such")])
def test_bad_value_or_name_is_a_clear_error(package, monkeypatch, param, message):
    res = _submit(package, monkeypatch, param)
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output
    assert FakeClient.created == []
