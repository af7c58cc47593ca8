from __future__ import annotations

import pytest
from kfp import dsl, local

from components.conftest import ROOT, artifact
from components.version_data.component import version_data
from lowres_ocr.pipeline.workspace import data_md5


def test_unit_rejects_another_revision(tmp_path):
    out = artifact(dsl.Dataset, tmp_path / "data")
    with pytest.raises(ValueError, match="tracks"):
        version_data.python_func(dataset_revision="0" * 32 + ".dir", train_sets="svt_test", eval_sets="", data=out)
    assert not (tmp_path / "data").exists()  # nothing pulled or copied


@pytest.mark.integration
def test_local_pulls_with_dvc(tmp_path):
    """kfp.local: a real `dvc pull` (from the bundled remote, dvc-bundle/, when no S3 is configured)."""
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path))
    task = version_data(dataset_revision=data_md5(ROOT), train_sets="svtp_test", eval_sets="svtp_test")
    out = task.outputs["data"]
    assert task.outputs["Output"] == data_md5(ROOT)
    labels = (ROOT / "data" / "svtp_test" / "labels.tsv").read_text(encoding="utf-8")
    assert (tmp_path.glob("*/version-data/data/svtp_test/labels.tsv")) and \
        open(out.path + "/svtp_test/labels.tsv", encoding="utf-8").read() == labels
    assert out.metadata["samples"]["svtp_test"] == len([ln for ln in labels.splitlines() if ln.strip()])
