from kfp import dsl

from components.image import PROJECT_IMAGE


@dsl.component(base_image=PROJECT_IMAGE)
def evaluate(
    model: dsl.Input[dsl.Model],
    data: dsl.Input[dsl.Dataset],
    report: dsl.Output[dsl.HTML],
    metrics: dsl.Output[dsl.Metrics],
    predictions: dsl.Output[dsl.Dataset],
    deploy_model: dsl.Output[dsl.Model],
    min_accuracy: float = 50.0,
    sets: str = "textzoom_easy,svt_test",
    limit: int = 0,
    baseline_report: str = "model/eval/report.json",
    baseline_model: str = "model/lowres_ocr.pt",
    tolerance: float = 0.0,
    smoke_set: str = "textzoom_easy",
    smoke_count: int = 100,
    modes: str = "",
) -> bool:
    """Benchmark evaluation (report.json/md/html) and the deploy gate against the shipped model on the same crops;
    ``deploy_model`` holds the checkpoint to deploy (the candidate, or the shipped one when the candidate does not
    pass) and ``predictions`` that checkpoint's crops + predictions for the smoke test. Returned: True = deploy
    something. One bool output: kfp.local 2.17 cannot resolve NamedTuple fields in dsl.If."""
    import json
    import shutil
    from pathlib import Path

    from lowres_ocr.evaluation.steps import evaluate as step

    out = Path(report.path).with_suffix(".d")
    pred = Path(predictions.path)
    pred.mkdir(parents=True, exist_ok=True)
    info = step(Path(model.path) / "model.pt", Path(data.path), [s.strip() for s in sets.split(",") if s.strip()], out,
                min_accuracy, baseline_report, limit, smoke_set, smoke_count, pred, modes, baseline_model, tolerance,
                Path(deploy_model.path))
    shutil.copyfile(out / "report.html", report.path)  # the HTML artifact is one file (KFP UI renders it)
    shutil.copytree(out, pred / "report", dirs_exist_ok=True)
    metrics.log_metric("accuracy", info["accuracy"])
    metrics.log_metric("samples", float(info["n"]))
    metrics.log_metric("gate_passed", 1.0 if info["passed"] else 0.0)
    metrics.log_metric("deploys_shipped", 1.0 if info["deploy"] == "shipped" else 0.0)
    predictions.metadata.update(info)
    deploy_model.metadata.update({"deploy": info["deploy"], "source": info.get("deploy_model", "")})
    print(info)
    # the Metrics artifact as a file too: kfp.local's cache treats an artifact without a file as missing
    Path(metrics.path).write_text(json.dumps(metrics.metadata))
    if info["deploy"] == "none":  # an artifact without a file is a cache miss for kfp.local: leave a note
        Path(deploy_model.path).mkdir(parents=True, exist_ok=True)
        (Path(deploy_model.path) / "NOT_DEPLOYED").write_text(info["gate"] + "\n")
    return info["deploy"] != "none"
