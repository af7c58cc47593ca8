from kfp import dsl

from components.image import PROJECT_IMAGE


@dsl.component(base_image=PROJECT_IMAGE)
def smoke_test(endpoint: dsl.Input[dsl.Artifact], predictions: dsl.Input[dsl.Dataset], repo: dsl.Input[dsl.Model],
               model: dsl.Input[dsl.Model], result: dsl.Output[dsl.Metrics]) -> bool:
    """Query the deployed ensemble over HTTP and gRPC with the evaluation's crops (answers must equal its predictions)
    and, when ``repo`` serves ``lowres_ocr_page``, with whole pages (answers must equal the in-process reading)."""
    import json
    from pathlib import Path

    from lowres_ocr.serving.steps import smoke

    info = json.loads(Path(endpoint.path).read_text())
    pred_dir = Path(predictions.path)
    expected = json.loads((pred_dir / "smoke_expected.json").read_text())
    report = smoke(info, pred_dir / "crops", expected, Path(repo.path), Path(model.path) / "model.pt")
    for proto in report["protocols"]:
        result.log_metric(f"{proto['protocol']}_matched", float(proto["matched"] or 0))
    result.log_metric("crops", float(len(expected)))
    for proto in report.get("page", {}).get("protocols", []):
        result.log_metric(f"page_{proto['protocol']}_matched", float(proto["matched"] or 0))
    if "page" in report:
        result.log_metric("pages", float(len(report["page"]["pages"])))
    print(json.dumps(report))
    # the Metrics artifact as a file too: kfp.local's cache treats an artifact without a file as missing
    Path(result.path).write_text(json.dumps(result.metadata))
    return bool(report["passed"])
