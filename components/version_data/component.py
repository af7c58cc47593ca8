from kfp import dsl

from components.image import PROJECT_IMAGE


@dsl.component(base_image=PROJECT_IMAGE)
def version_data(dataset_revision: str, train_sets: str, eval_sets: str, data: dsl.Output[dsl.Dataset]) -> str:
    """``dvc pull`` the datasets (comma-separated set names) at the revision data.dvc tracks; returns its md5."""
    from pathlib import Path

    from lowres_ocr.data.steps import version_data as step

    info = step(Path(data.path), sorted({s.strip() for s in (train_sets + "," + eval_sets).split(",") if s.strip()}), dataset_revision)
    data.metadata.update(info)
    print(info)
    return str(info["md5"])
