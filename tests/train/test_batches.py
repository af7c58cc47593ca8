"""Training batches in the model's geometry and charset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lowres_ocr.core.charset import Charset
from lowres_ocr.core.geometry import PAD_VALUE, SQUEEZE, Geometry, lr_input
from lowres_ocr.data.degrade import degrade
from lowres_ocr.train.batches import SampleSource, StepBatches, synthetic_lr


def _hr(w: int = 160, h: int = 40) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_squeeze_degradation_is_the_128x32_to_64x16_recipe() -> None:
    hr = _hr()
    got = synthetic_lr(hr, np.random.default_rng(5), "express", SQUEEZE)
    want = degrade(hr.resize((128, 32), Image.BICUBIC), np.random.default_rng(5), "express")
    assert got.size == (64, 16) and np.array_equal(np.asarray(got), np.asarray(want))


def test_aspect_degradation_keeps_the_crop_aspect() -> None:
    geometry = Geometry("aspect", height=24, width=288)
    assert synthetic_lr(_hr(160, 40), np.random.default_rng(1), "seed", geometry).size == (96, 24)
    assert synthetic_lr(_hr(2000, 40), np.random.default_rng(1), "seed", geometry).size == (288, 24)  # past the cap


def test_batches_follow_the_geometry_and_the_charset(tmp_path: Path) -> None:
    folder = tmp_path / "words"
    (folder / "img").mkdir(parents=True)
    _hr(160, 40).save(folder / "img" / "a.png")
    _hr(60, 40).save(folder / "img" / "b.png")
    (folder / "labels.tsv").write_text("img/a.png\t湖北 A1\nimg/b.png\t襄阳\n", encoding="utf-8")
    charset = Charset("zh", list("湖北襄阳A1 "))
    geometry = Geometry("aspect", height=24, width=288)
    source = SampleSource(folder, charset=charset)
    assert sorted(s.label for s in source.samples) == ["湖北 A1", "襄阳"]
    batch = StepBatches([source], [1.0], batch_size=6, seed=0, geometry=geometry, charset=charset)[0]
    assert batch["lr"].shape == (6, 3, 24, 288) and batch["hr"].shape == (6, 3, 48, 576)
    assert float(batch["lr"][:, :, :, -1].min()) == PAD_VALUE  # every crop is narrower than the cap: padded
    ids = batch["targets"].tolist()
    assert charset.decode_ids(ids[: int(batch["target_lengths"][0])]) == batch["labels"][0]
    with pytest.raises(ValueError, match="no usable samples"):  # an ASCII head never trains on shortened Chinese lines
        SampleSource(folder)


def test_hr_crops_in_every_batch(tmp_path: Path) -> None:
    folder = tmp_path / "pairs"
    (folder / "hr").mkdir(parents=True)
    (folder / "lr").mkdir()
    _hr(128, 32).save(folder / "hr" / "a.png")
    _hr(128, 32).resize((64, 16)).rotate(180).save(folder / "lr" / "a.png")
    (folder / "labels.tsv").write_text("hr/a.png\tlr/a.png\tab\n")
    batches = StepBatches([SampleSource(folder)], [1.0], batch_size=4, seed=0, real_lr_share=1.0, hr_per_batch=1)
    for step in range(3):
        batch = batches[step]
        from_hr = [bool(np.array_equal(batch["lr"][i].numpy(), lr_input(Image.open(folder / "hr" / "a.png").convert("RGB"))))
                   for i in range(4)]
        assert from_hr == [True, False, False, False]
