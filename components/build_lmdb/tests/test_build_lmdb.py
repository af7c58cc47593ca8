
from pathlib import Path

from kfp import dsl, local

from components.build_lmdb.component import build_lmdb
from components.conftest import artifact
from lowres_ocr.data.lmdb_io import LmdbReader


def test_unit_one_lmdb_per_set(data_dir, tmp_path):
    out = artifact(dsl.Dataset, tmp_path / "lmdb")
    kept = build_lmdb.python_func(data=artifact(dsl.Dataset, data_dir), lmdb=out)
    assert kept == 60 + 24 + 30
    assert LmdbReader(tmp_path / "lmdb" / "textzoom_easy").kind == "pairs"
    words = LmdbReader(tmp_path / "lmdb" / "svt_test")
    assert words.kind == "words" and len(words) == 30
    first = (data_dir / "svt_test" / "labels.tsv").read_text(encoding="utf-8").splitlines()[0].split("\t")
    assert words[0].label == first[1] and words[0].image == (data_dir / "svt_test" / first[0]).read_bytes()
    assert out.metadata["kept"]["textzoom_train2"] == 60


def test_local_runner(data_dir, tmp_path):
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path))

    @dsl.pipeline
    def p() -> dsl.Dataset:
        src = dsl.importer(artifact_uri=str(data_dir), artifact_class=dsl.Dataset, reimport=False)
        return build_lmdb(data=src.output).outputs["lmdb"]

    out = p().output
    assert sorted(x.name for x in Path(out.path).iterdir()) == ["svt_test", "textzoom_easy", "textzoom_train2"]
