"""A model with the full PP-OCR dictionary and the aspect-kept input geometry, through every stage: checkpoint,
ONNX (metadata, parity), the Triton repository (preprocess geometry, decode charset) and HTTP + gRPC answers
equal to the in-process prediction, with non-ASCII text on the wire."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest
import torch
from PIL import Image

from typer.testing import CliRunner

from lowres_ocr.cli import app as cli_app
from lowres_ocr.core.geometry import Geometry

pytestmark = pytest.mark.skipif(importlib.util.find_spec("rapidocr") is None,
                                reason="the ppocr charset is read from the rapidocr wheel (install the peers extra)")

ROOT = Path(__file__).resolve().parents[2]
GEOMETRY = Geometry("aspect", height=16, width=128)
#: A direct-read model (no SR branch): the crop arrives at the recognizer's resolution.
DIRECT = Geometry("aspect", height=32, width=256, sr_scale=1)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _chinese_line() -> bytes:
    """A rendered express-sheet line (a CJK font from Debian's packages; scripts/bootstrap installs them)."""
    from PIL import ImageDraw, ImageFont

    from lowres_ocr.page.render import font_path

    path = font_path()
    if path is None:
        pytest.skip("no CJK font installed (scripts/bootstrap installs fonts-wqy-zenhei, fonts-noto-cjk, ...)")
    font = ImageFont.truetype(path, 28)
    text = "湖北省襄阳市樊城区 739 H181-02 88"
    img = Image.new("RGB", (int(font.getlength(text)) + 16, 40), "white")
    ImageDraw.Draw(img).text((8, 4), text, font=font, fill="black")
    return _png(img)


def _crops() -> dict[str, bytes]:
    """Crops of aspect 1:1, 4:1, 20:1 (past the 8:1 cap), a 6×10 px one and a grayscale line."""
    real = Image.open(sorted((ROOT / "tests" / "fixtures" / "real_crops" / "images").iterdir())[3]).convert("RGB")
    wide = Image.new("RGB", (real.width * 6, real.height))
    for i in range(6):
        wide.paste(real, (i * real.width, 0))
    return {
        "1:1": _png(real.resize((40, 40))),
        "4:1": _png(real.resize((160, 40))),
        "20:1": _png(wide.resize((800, 40))),
        "6x10": _png(real.resize((6, 10))),
        "line": _png(wide.resize((300, 30)).convert("L")),
    }


@pytest.fixture(scope="module", params=["sr_x2", "direct"])
def settings_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    from lowres_ocr.network import build_model, load_model, save_checkpoint, tiny_config

    torch.manual_seed(3)
    cfg = {**tiny_config(), "charset": "ppocr", "geometry": GEOMETRY.to_config()}
    if request.param == "direct":
        cfg.update(geometry=DIRECT.to_config(), sr={"kind": "none"})
    path = tmp_path_factory.mktemp("settings") / "model.pt"
    save_checkpoint(path, build_model(cfg).eval())
    model, _ = load_model(path)
    return path, model


def test_checkpoint_and_onnx_carry_the_settings(settings_model, tmp_path: Path) -> None:
    from lowres_ocr.export.onnx_export import export_onnx, model_settings, read_metadata
    from lowres_ocr.export.parity import check_parity, load_crops
    from lowres_ocr.network.encoders import ppocr_charset

    _, model = settings_model
    assert model.charset == ppocr_charset() and model.charset.num_classes == 18710
    assert model.geometry in (GEOMETRY, DIRECT)
    folder = tmp_path / "crops"
    (folder / "images").mkdir(parents=True)
    rows = []
    for name, data in _crops().items():
        (folder / "images" / f"{name.replace(':', '_')}.png").write_bytes(data)
        rows.append(f"images/{name.replace(':', '_')}.png\tx\n")
    (folder / "labels.tsv").write_text("".join(rows))
    onnx_path = export_onnx(model, tmp_path / "m.onnx", config=model.config)
    assert model_settings(read_metadata(onnx_path)) == (model.charset, model.geometry)
    names, lr = load_crops(folder, 10, model.geometry)
    assert lr.shape == (5, *model.geometry.input_shape())
    result = check_parity(model, onnx_path, names, lr)
    assert result.passed, result.summary()


@pytest.mark.integration
def test_served_answers_equal_the_in_process_prediction(settings_model, tmp_path: Path) -> None:
    from lowres_ocr.core.images import decode_image
    from lowres_ocr.export.onnx_export import export_onnx
    from lowres_ocr.network.inference import Recognizer
    from lowres_ocr.serving.client import OcrClient
    from lowres_ocr.serving.repository import RepositoryOptions, write_repository
    from lowres_ocr.serving.server import TritonServer

    path, model = settings_model
    onnx_path = export_onnx(model, tmp_path / "m.onnx", config=model.config)
    repo = write_repository(onnx_path, tmp_path / "repo", options=RepositoryOptions(local=True))
    assert (repo / "decode" / "1" / "charset.txt").read_text(encoding="utf-8") == model.charset.to_text()
    crops = {**_crops(), "chinese line": _chinese_line()}
    expected = [d.text for d in Recognizer.load(path).predict([decode_image(b) for b in crops.values()], mode="sr")]
    assert any(ord(ch) > 127 for text in expected for ch in text), "the random head should emit non-ASCII symbols"
    with TritonServer(repo, ready_timeout=120) as server:
        for protocol, url in (("http", server.http_url), ("grpc", server.grpc_url)):
            with OcrClient(url, protocol) as client:
                got = [p.text for p in client.predict_batch(list(crops.values()))]
            assert got == expected, protocol
            files = []
            for i, data in enumerate(crops.values()):
                files.append(tmp_path / f"crop{i}.png")
                files[-1].write_bytes(data)
            result = CliRunner().invoke(cli_app, ["infer", "--url", url, "--protocol", protocol, *map(str, files)])
            assert result.exit_code == 0, result.output
            assert [line.split("\t")[1] for line in result.output.strip().splitlines()] == expected, protocol
    assert server.returncode == 0
