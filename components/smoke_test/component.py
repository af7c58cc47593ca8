from kfp import dsl

from components.image import PROJECT_IMAGE


@dsl.component(base_image=PROJECT_IMAGE)
def smoke_test(endpoint: dsl.Input[dsl.Artifact], predictions: dsl.Input[dsl.Dataset], result: dsl.Output[dsl.Metrics]) -> bool:
    """Query the deployed ensemble over HTTP and gRPC with the evaluation's crops; answers must equal its predictions."""
    import json
    from pathlib import Path

    from lowres_ocr.serving.steps import smoke

    info = json.loads(Path(endpoint.path).read_text())
    pred_dir = Path(predictions.path)
    expected = json.loads((pred_dir / "smoke_expected.json").read_text())
    report = smoke(info, pred_dir / "crops", expected)
    for proto in report["protocols"]:
        result.log_metric(f"{proto['protocol']}_matched", float(proto["matched"] or 0))
    result.log_metric("crops", float(len(expected)))
    print(json.dumps(report))
    # the Metrics artifact as a file too: kfp.local's cache treats an artifact without a file as missing
    Path(result.path).write_text(json.dumps(result.metadata))
    return bool(report["passed"])
