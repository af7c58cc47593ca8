"""The served page endpoint ``lowres_ocr_page`` on the real local tritonserver (python backend only).

Its lines equal the in-process reader's on the rendered express sheet over HTTP and gRPC, concurrent pages
are answered correctly, a bad image fails only its own request (400 / INVALID_ARGUMENT), and
``lowres-ocr read --url`` writes the same JSON as the in-process command.
"""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tritonclient.utils import InferenceServerException
from typer.testing import CliRunner

from lowres_ocr.cli import app
from lowres_ocr.page.client import PageClient

from .conftest import WEIGHTS

pytestmark = pytest.mark.integration
PROTOCOLS = ["http", "grpc"]


@pytest.fixture(scope="module")
def page_repo(tmp_path_factory) -> Path:
    """A local repository (python backends) with the page endpoint, from the shipped model's ONNX export."""
    if not WEIGHTS.is_file():
        pytest.skip(f"{WEIGHTS} not present")
    from lowres_ocr.export.onnx_export import export_onnx
    from lowres_ocr.network import load_model
    from lowres_ocr.page.serving import PageOptions
    from lowres_ocr.serving.repository import RepositoryOptions, validate_repository, write_repository

    model = load_model(WEIGHTS)[0]
    root = tmp_path_factory.mktemp("page_repo")
    onnx_path = export_onnx(model, root / "model.onnx", config=model.config)
    repo = write_repository(onnx_path, root / "models", options=RepositoryOptions(local=True, page=PageOptions()))
    models = validate_repository(repo)
    assert sorted(models) == ["decode", "detector", "lowres_ocr", "lowres_ocr_page", "preprocess", "recognizer"]
    assert models["lowres_ocr_page"].parameters["decoder"].string_value == "ctc"
    return repo


@pytest.fixture(scope="module")
def page_server(page_repo):
    from lowres_ocr.serving.server import TritonServer

    with TritonServer(page_repo, ready_timeout=180) as server:
        yield server
    assert server.returncode == 0, "tritonserver did not exit cleanly"


def _url(server, protocol: str) -> str:
    return server.http_url if protocol == "http" else server.grpc_url


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_served_lines_equal_in_process(page_server, page_reader, express_sheet, protocol):
    path, lines = express_sheet
    expected = page_reader.read(np.asarray(Image.open(path).convert("RGB")))
    with PageClient(_url(page_server, protocol), protocol) as client:
        served = client.read(path.read_bytes())
    assert [r.text for r in served] == [r.text for r in expected]
    assert [r.text for r in served if r.text] == [t for t, zh, _ in lines if not zh]
    np.testing.assert_allclose([r.points for r in served], [r.points for r in expected], atol=0.5)
    np.testing.assert_allclose([r.confidence for r in served], [r.confidence for r in expected], atol=2e-3)


def _png(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (250, 250, 250)).save(buf, "PNG")
    return buf.getvalue()


def test_concurrent_pages_and_bad_images(page_server, express_sheet):
    sheet = express_sheet[0].read_bytes()
    pages = [sheet, _png((300, 200)), sheet, b"not an image", sheet, _png((1, 1))]

    def ask(data: bytes):
        with PageClient(page_server.http_url) as client:
            try:
                return [r.text for r in client.read(data)]
            except InferenceServerException as err:
                return (err.status(), err.message())

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(ask, pages))
    assert answers[0] == answers[2] == answers[4] and "EXPRESS" in answers[0]
    assert answers[1] == []  # no text
    assert answers[3][0] == "400" and "not a decodable image" in answers[3][1]
    assert answers[5][0] == "400" and "smaller than" in answers[5][1]
    with PageClient(page_server.grpc_url, "grpc") as client, pytest.raises(InferenceServerException) as err:
        client.read(sheet[: len(sheet) // 2])
    assert "INVALID_ARGUMENT" in str(err.value.status())


def test_cli_url_matches_in_process(page_server, express_sheet, tmp_path):
    path = express_sheet[0]
    runner = CliRunner()
    local = runner.invoke(app, ["read", str(path), "--out", str(tmp_path / "local"), "--weights", str(WEIGHTS)])
    served = runner.invoke(app, ["read", str(path), "--out", str(tmp_path / "served"), "--url", page_server.grpc_url,
                                 "--protocol", "grpc"])
    assert local.exit_code == 0 and served.exit_code == 0, served.output
    a, b = (json.loads((tmp_path / d / "sheet.json").read_text(encoding="utf-8")) for d in ("local", "served"))
    assert [r["text"] for r in a] == [r["text"] for r in b]
    assert (tmp_path / "served" / "sheet.png").is_file()
    refused = runner.invoke(app, ["read", str(path), "--out", str(tmp_path / "x"), "--url", page_server.http_url, "--words"])
    assert refused.exit_code == 2
