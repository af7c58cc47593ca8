from kfp import dsl

from components.image import PROJECT_IMAGE


@dsl.component(base_image=PROJECT_IMAGE)
def convert_tensorrt(onnx_model: dsl.Input[dsl.Model], plan: dsl.Output[dsl.Model], fp16: bool = True) -> bool:
    """TensorRT plan from the ONNX model (GPU + tensorrt); returns False when the step had to be skipped (exit 69)."""
    from pathlib import Path

    from lowres_ocr.export.steps import convert_tensorrt as step

    info = step(Path(onnx_model.path) / "model.onnx", Path(plan.path), fp16)
    plan.metadata.update(info)
    print(info)
    return bool(info["built"])
