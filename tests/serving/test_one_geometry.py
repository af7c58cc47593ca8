"""One crop, every stage: the training batcher (folder and LMDB), the evaluator, ONNX parity and the served
``preprocess`` model all turn it into the same network input, because all of them read the set through
``lowres_ocr.data.reader`` and convert through ``lowres_ocr.core.geometry``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lowres_ocr.core.geometry import Geometry, lr_input
from lowres_ocr.core.images import decode_image

ROOT = Path(__file__).resolve().parents[2]
RELEASED = ROOT / "model" / "lowres_ocr.pt"


@pytest.fixture(scope="module")
def crop_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A pairs folder of one sample whose LR side is a real crop, made grayscale and cut to an odd size."""
    source = sorted((ROOT / "tests" / "fixtures" / "real_crops" / "images").iterdir())[0]
    img = Image.open(source).convert("L")
    img = img.crop((0, 0, img.width - 3, img.height - 1))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    folder = tmp_path_factory.mktemp("one") / "one_crop"
    (folder / "lr").mkdir(parents=True)
    (folder / "hr").mkdir()
    (folder / "lr" / "a.png").write_bytes(buf.getvalue())
    Image.open(source).convert("RGB").save(folder / "hr" / "a.png")
    (folder / "labels.tsv").write_text("hr/a.png\tlr/a.png\tquote\n", encoding="utf-8")
    return folder, buf.getvalue()


@pytest.fixture(scope="module")
def geometry() -> Geometry:
    """The released model's input geometry: the evaluator and the served ``preprocess`` model use it."""
    from lowres_ocr.network import load_model

    if not RELEASED.is_file():
        pytest.skip(f"{RELEASED} not present")
    return load_model(RELEASED)[0].geometry


def _batcher_input(path: Path, geometry: Geometry) -> np.ndarray:
    from lowres_ocr.train.batches import SampleSource, StepBatches

    batches = StepBatches([SampleSource(path)], [1.0], batch_size=1, seed=0, real_lr_share=1.0, hr_share=0.0,
                          geometry=geometry)
    return batches[0]["lr"][0].numpy()


def _evaluator_input(path: Path) -> np.ndarray:
    from lowres_ocr.evaluation.predictors import TorchPredictor
    from lowres_ocr.evaluation.runner import Options, evaluate_sets

    predictor = TorchPredictor(RELEASED)
    seen: list[torch.Tensor] = []
    predictor.recognizer.model.sr.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    evaluate_sets(predictor, [str(path)], opts=Options(latency_samples=0, gallery=0, failures=0, modes=("sr",)))
    assert seen, "the evaluator never ran the network on the LR crop"
    return seen[0][0].float().contiguous().numpy()


def _served_input(url: str, data: bytes) -> np.ndarray:
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url)
    inp = httpclient.InferInput("image", [1, 1], "BYTES")
    inp.set_data_from_numpy(np.array([[data]], dtype=object))
    return client.infer("preprocess", [inp]).as_numpy("lr")[0]


def test_one_crop_gives_one_tensor_in_every_stage(crop_set, geometry, triton, tmp_path: Path) -> None:
    from lowres_ocr.data.build import BuildOptions, build_lmdb
    from lowres_ocr.export.parity import load_crops

    folder, data = crop_set
    expected = lr_input(decode_image(data), geometry)
    assert expected.shape[0] == 3 and Image.open(io.BytesIO(data)).mode == "L"
    lmdb_set = tmp_path / "one_crop_lmdb"
    assert build_lmdb([folder], lmdb_set, BuildOptions()).kept == 1

    tensors = {
        "training batcher (folder)": _batcher_input(folder, geometry),
        "training batcher (LMDB)": _batcher_input(lmdb_set, geometry),
        "evaluator": _evaluator_input(folder),
        "ONNX parity (folder)": load_crops(folder, 1, geometry)[1][0],
        "ONNX parity (LMDB)": load_crops(lmdb_set, 1, geometry)[1][0],
        "Triton preprocess over HTTP": _served_input(triton.http_url, data),
    }
    for stage, tensor in tensors.items():
        assert tensor.shape == expected.shape, stage
        np.testing.assert_array_equal(tensor, expected, err_msg=stage)
