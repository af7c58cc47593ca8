from kfp import dsl

from components.image import PROJECT_IMAGE


@dsl.component(base_image=PROJECT_IMAGE)
def build_lmdb(data: dsl.Input[dsl.Dataset], lmdb: dsl.Output[dsl.Dataset]) -> int:
    """One LMDB (ASTER / TextZoom keys) per dataset folder; returns the number of samples kept."""
    from pathlib import Path

    from lowres_ocr.data.steps import build_lmdbs

    info = build_lmdbs(Path(data.path), Path(lmdb.path))
    lmdb.metadata.update(info)
    print(info)
    return int(sum(info["kept"].values()))
