from kfp import dsl

from components.image import PROJECT_IMAGE


@dsl.component(base_image=PROJECT_IMAGE)
def evaluate(
    model: dsl.Input[dsl.Model],
    data: dsl.Input[dsl.Dataset],
    report: dsl.Output[dsl.HTML],
    metrics: dsl.Output[dsl.Metrics],
    predictions: dsl.Output[dsl.Dataset],
    min_accuracy: float = 50.0,
    sets: str = "textzoom_easy,svt_test",
    limit: int = 0,
    baseline_report: str = "",
    smoke_set: str = "textzoom_easy",
    smoke_count: int = 100,
    modes: str = "",
) -> bool:
    """Benchmark evaluation (report.json/md/html) and the deploy gate (returned: True = deploy); also the crops +
    predictions the smoke test replays. One bool output: kfp.local 2.17 cannot resolve NamedTuple fields in dsl.If."""
    import shutil
    import json
    from pathlib import Path

    from lowres_ocr.evaluation.steps import evaluate as step

    out = Path(report.path).with_suffix(".d")
    pred = Path(predictions.path)
    pred.mkdir(parents=True, exist_ok=True)
    info = step(Path(model.path) / "model.pt", Path(data.path), [s.strip() for s in sets.split(",") if s.strip()], out,
                min_accuracy, baseline_report, limit, smoke_set, smoke_count, pred, modes)
    shutil.copyfile(out / "report.html", report.path)  # the HTML artifact is one file (KFP UI renders it)
    shutil.copytree(out, pred / "report", dirs_exist_ok=True)
    metrics.log_metric("accuracy", info["accuracy"])
    metrics.log_metric("samples", float(info["n"]))
    metrics.log_metric("gate_passed", 1.0 if info["passed"] else 0.0)
    predictions.metadata.update(info)
    print(info)
    # the Metrics artifact as a file too: kfp.local's cache treats an artifact without a file as missing
    Path(metrics.path).write_text(json.dumps(metrics.metadata))
    return bool(info["passed"])
