from kfp import dsl

from components.image import PROJECT_IMAGE


@dsl.component(base_image=PROJECT_IMAGE)
def export_onnx(model: dsl.Input[dsl.Model], data: dsl.Input[dsl.Dataset], onnx_model: dsl.Output[dsl.Model],
                parity_set: str = "svt_test", parity_count: int = 200):
    """Export ``LowResOCR.infer`` to ONNX (dynamic batch) and check parity with PyTorch on real crops."""
    from pathlib import Path

    from lowres_ocr.export.steps import export_onnx as step

    info = step(Path(model.path) / "model.pt", Path(onnx_model.path), Path(data.path) / parity_set, parity_count)
    onnx_model.metadata.update(info)
    print(info)
