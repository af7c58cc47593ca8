"""``lowres-ocr pipeline run-local``'s terminal view on a small real kfp.local pipeline: one line per step, the
steps' output in the log file only, the log tail of a failed step.

(No ``from __future__ import annotations`` here: kfp reads the components' annotations as types.)
"""

import io
from pathlib import Path

import pytest
from kfp import dsl, local
from rich.console import Console

from lowres_ocr.pipeline.progress import parse_outputs, run_with_progress


@dsl.component(base_image="python:3.11")
def chatty(n: int, report: dsl.Output[dsl.Metrics]) -> int:
    for i in range(50):
        print(f"chatty noise line {i}")
    report.log_metric("value", float(n))
    with open(report.path, "w") as fh:  # kfp.local's cache treats an artifact without a file as missing
        fh.write("{}")
    return n + 1


@dsl.component(base_image="python:3.11")
def boom(n: int) -> int:
    for i in range(40):
        print(f"boom line {i}")
    raise RuntimeError("the step broke on purpose")


@dsl.pipeline(name="progress-ok")
def ok_pipeline(n: int = 1) -> int:
    first = chatty(n=n)
    with dsl.If(n > 100, name="big-n"):
        chatty(n=first.outputs["Output"])
    return chatty(n=first.outputs["Output"]).outputs["Output"]


@dsl.pipeline(name="progress-fails")
def failing_pipeline(n: int = 1):
    first = chatty(n=n)
    broken = boom(n=first.outputs["Output"])
    chatty(n=broken.output)


def _run(pipeline, tmp_path: Path, cache: bool = False):
    root = tmp_path / "root"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), enable_caching=cache,
               raise_on_error=True)
    buf = io.StringIO()
    console = Console(file=buf, soft_wrap=True, width=200, color_system=None)
    log = tmp_path / "run.log"
    result, tracker, error = run_with_progress(lambda: pipeline(), pipeline, log, root / ".kfp_cache", console)
    return result, tracker, error, buf.getvalue().splitlines(), log.read_text()


@pytest.mark.integration
def test_one_line_per_step_and_the_rest_in_the_log(tmp_path, capfd):
    result, tracker, error, lines, log = _run(ok_pipeline, tmp_path, cache=True)
    assert error is None and result.output == 3
    assert len(lines) == 2, lines  # chatty-2 (condition big-n false) has a twin that ran: no line of its own
    assert lines[0].startswith("✓ chatty ") and lines[0].rstrip().endswith("Output 2")
    assert lines[1].startswith("✓ chatty-3 ") and "Output 3" in lines[1]
    assert "chatty noise line 49" in log and "Executing task" in log  # step output and kfp's records: in the log
    terminal = capfd.readouterr()
    assert "noise line" not in terminal.out + terminal.err
    # the same run again: every step from kfp.local's cache
    _, _, error, lines, _ = _run(ok_pipeline, tmp_path, cache=True)
    assert error is None and len(lines) == 2 and all(" cached " in ln for ln in lines), lines


@pytest.mark.integration
def test_a_failed_step_shows_its_log_tail(tmp_path):
    _, tracker, error, lines, log = _run(failing_pipeline, tmp_path)
    assert error is not None and tracker.failed == ["boom"]
    failed = next(i for i, ln in enumerate(lines) if ln.startswith("✗ boom"))
    tail = lines[failed + 1:failed + 21]
    assert len(tail) == 20 and "the step broke on purpose" in "\n".join(tail)
    assert "boom line 39" in "\n".join(lines) and "boom line 5\n" not in "\n".join(lines) + "\n"
    assert any(ln.startswith("– chatty") and "not run" in ln for ln in lines)
    assert "boom line 5" in log


def test_parse_outputs_of_a_kfp_record():
    msg = ("Task 'evaluate' outputs:\n    Output: True\n    metrics: Metrics( name='metrics',\n"
           "                      uri='/x/metrics',\n                      metadata={'accuracy': 75.5, 'n': 400} )\n"
           "    text: 'a: b'")
    assert parse_outputs(msg) == {"Output": True, "metrics": {"uri": "/x/metrics", "metadata": {"accuracy": 75.5, "n": 400}},
                                  "text": "a: b"}


def test_step_lines_say_which_model_is_served():
    from lowres_ocr.pipeline.summaries import describe

    ctx: dict = {}
    meta = {"sets": {"textzoom_easy": 61.0, "svt_test": 89.5}, "baseline_sets": {"textzoom_easy": 62.5, "svt_test": 89.0},
            "passed": False, "deploy": "shipped", "deploy_model": "model/lowres_ocr.pt"}
    line = describe("evaluate", {"predictions": {"uri": "", "metadata": meta}}, ctx)
    assert line == ("textzoom_easy 61.0% (shipped 62.5%), svt_test 89.5% (shipped 89.0%); "
                    "gate failed → keeping the shipped model/lowres_ocr.pt")
    smoke = describe("smoke-test-2", {"result": {"uri": "", "metadata": {"http_matched": 100.0, "grpc_matched": 100.0,
                                                                        "crops": 100.0}}}, ctx)
    assert smoke == "HTTP 100/100, gRPC 100/100 answers equal the evaluation's [shipped model/lowres_ocr.pt]"
    deploy = describe("deploy-triton", {"endpoint": {"uri": "", "metadata": {"http_url": "127.0.0.1:1", "pid": 7.0}}}, ctx)
    assert "(pid 7)" in deploy and "[shipped model/lowres_ocr.pt]" in deploy


def test_step_lines_of_the_page_endpoint():
    from lowres_ocr.pipeline.summaries import describe

    ctx = {"deploy": "candidate"}
    meta = {"http_matched": 100.0, "grpc_matched": 100.0, "crops": 100.0, "page_http_matched": 2.0,
            "page_grpc_matched": 1.0, "pages": 2.0}
    assert describe("smoke-test", {"result": {"uri": "", "metadata": meta}}, ctx) == (
        "HTTP 100/100, gRPC 100/100 answers equal the evaluation's; pages HTTP 2/2, gRPC 1/2 equal the in-process "
        "reading [new model]")
    endpoint = {"http_url": "127.0.0.1:1", "grpc_url": "127.0.0.1:2", "pid": 7.0, "models": ["lowres_ocr", "lowres_ocr_page"]}
    assert describe("deploy-triton-2", {"endpoint": {"uri": "", "metadata": endpoint}}, ctx) == \
        "HTTP 127.0.0.1:1, gRPC 127.0.0.1:2 (pid 7) + page endpoint [new model]"
