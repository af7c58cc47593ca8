from typing import Optional

from kfp import dsl

from components.image import PROJECT_IMAGE


@dsl.component(base_image=PROJECT_IMAGE)
def build_triton_repo(onnx_model: dsl.Input[dsl.Model], repo: dsl.Output[dsl.Model], deploy_target: str = "local",
                      plan: Optional[dsl.Input[dsl.Model]] = None, page: bool = True):
    """Triton ensemble repository (preprocess → recognizer → decode); ``local`` target: python-backend recognizer;
    ``page``: also the whole-page endpoint (detector + lowres_ocr_page)."""
    from pathlib import Path

    from lowres_ocr.serving.steps import build_triton_repo as step

    plan_file = Path(plan.path) / "model.plan" if plan is not None and (Path(plan.path) / "model.plan").is_file() else None
    info = step(Path(onnx_model.path) / "model.onnx", Path(repo.path), plan_file, deploy_target == "local", page)
    repo.metadata.update(info)
    print(info)
