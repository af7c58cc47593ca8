"""`pipeline run-local`: the kfp.local cache and arguments that name files."""

from __future__ import annotations

import json


def test_a_changed_model_under_the_same_path_turns_the_cache_off(tmp_path):
    """kfp.local keys its cache by argument values: a new file under the same path must not reuse old outputs."""
    from lowres_ocr.pipeline.commands import PATH_DIGESTS, changed_path_arguments, path_digests

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "lowres_ocr.pt").write_bytes(b"release 1")
    args = {"init_from": "model/lowres_ocr.pt", "baseline_model": "model/lowres_ocr.pt", "preset": "finetune"}
    outputs = tmp_path / "local_outputs"
    first = path_digests(tmp_path, args)
    assert set(first) == {"init_from=model/lowres_ocr.pt", "baseline_model=model/lowres_ocr.pt"}
    assert changed_path_arguments(outputs, first) == []  # nothing recorded yet
    outputs.mkdir()
    (outputs / PATH_DIGESTS).write_text(json.dumps(first))
    assert changed_path_arguments(outputs, path_digests(tmp_path, args)) == []
    (tmp_path / "model" / "lowres_ocr.pt").write_bytes(b"release 2")
    assert changed_path_arguments(outputs, path_digests(tmp_path, args)) == [
        "baseline_model=model/lowres_ocr.pt", "init_from=model/lowres_ocr.pt"]
