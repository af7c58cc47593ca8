"""The served page endpoint ``lowres_ocr_page`` on the real local tritonserver (python backend only).

Its lines equal the in-process reader's on the rendered express sheet over HTTP and gRPC, concurrent pages
are answered correctly, a bad image fails only its own request (400 / INVALID_ARGUMENT),
``lowres-ocr read --url`` writes the same JSON as the in-process command, and with a recognizer queue delay the
crops of concurrent pages are executed in one recognizer batch (Triton's statistics).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tritonclient.utils import InferenceServerException
from typer.testing import CliRunner

from lowres_ocr.cli import app
from lowres_ocr.page.client import PageClient

from .conftest import WEIGHTS, read_lines, readable_lines, shipped_reads_chinese

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
    assert read_lines([r.text for r in served]) == readable_lines(lines, shipped_reads_chinese())
    np.testing.assert_allclose([r.points for r in served], [r.points for r in expected], atol=0.5)
    np.testing.assert_allclose([r.confidence for r in served], [r.confidence for r in expected], atol=2e-3)


def _png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 250 if mode == "L" else (250, 250, 250)).save(buf, "PNG")
    return buf.getvalue()


def test_concurrent_pages_and_bad_images(page_server, express_sheet):
    sheet = express_sheet[0].read_bytes()
    pages = [sheet, _png((300, 200)), sheet, b"not an image", sheet, _png((1, 1)), _png((10000, 10000), "L"), sheet]

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
    assert answers[6][0] == "400" and "10000x10000 px exceeds the limits" in answers[6][1]
    assert answers[7] == answers[0]  # and the next page is read as before
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


def test_page_smoke_test_passes_and_catches_a_difference(page_server, page_reader, monkeypatch):
    """The pipeline's page check on the real server: both protocols equal the in-process reading; a served text
    changed on its way back fails it, naming the protocol, the sheet and the line."""
    from lowres_ocr.page.smoke import page_smoke_test, smoke_pages

    pages = smoke_pages()
    report = page_smoke_test(page_server.http_url, page_server.grpc_url, pages, page_reader)
    assert report.passed, report.as_dict()
    assert [(r.protocol, r.predicted, r.matched, r.bad_input_status, r.recovered) for r in report.results] == \
        [("http", 2, 2, "400", True), ("grpc", 2, 2, "StatusCode.INVALID_ARGUMENT", True)]

    read = PageClient.read

    def altered(self, data):
        regions = read(self, data)
        if data == pages["sheet_rotated.png"] and self.protocol == "grpc":
            regions[2].text += "x"
        return regions

    monkeypatch.setattr(PageClient, "read", altered)
    report = page_smoke_test(page_server.http_url, page_server.grpc_url, pages, page_reader)
    assert not report.passed and report.results[0].passed
    assert report.results[1].errors == ["sheet_rotated.png: line 2: text 'Beijingx' served, 'Beijing' in process"]


#: Recognizer queue delay of the batching server: far longer than one page's detection on a loaded machine.
BATCH_DELAY_US = 5_000_000


@pytest.fixture(scope="module")
def batching_server(page_repo: Path) -> Iterator[Any]:
    """A second server from the same ONNX export: 4 page instances, the recognizer's batcher waits up to 5 s."""
    from lowres_ocr.page.serving import PageOptions
    from lowres_ocr.serving.configs import Scheduling
    from lowres_ocr.serving.repository import RepositoryOptions, write_repository
    from lowres_ocr.serving.server import TritonServer

    options = RepositoryOptions(local=True, page=PageOptions(instances=4),
                                recognizer=Scheduling(max_queue_delay_us=BATCH_DELAY_US))
    repo = write_repository(page_repo.parent / "model.onnx", page_repo.parent / "batching", options=options)
    with TritonServer(repo, ready_timeout=180) as server:
        yield server
    assert server.returncode == 0, "tritonserver did not exit cleanly"


def _recognizer_stats(url: str) -> dict[str, Any]:
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url)
    try:
        return client.get_inference_statistics("recognizer")["model_stats"][0]
    finally:
        client.close()


def test_concurrent_pages_share_recognizer_batches(batching_server: Any, express_sheet: tuple[Path, list]) -> None:
    """8 express sheets at once: the recognizer runs fewer batches than it got requests, some larger than a page.

    Why it holds: each page model instance sends all of its page's crops as one recognizer request (6 lines
    here, fewer than the max batch of 64). 4 instances take 4 pages at once; their detector calls run one after
    another (one detector instance, well under a second each), and the dynamic batcher keeps a queued request up
    to BATCH_DELAY_US waiting for more, so the requests of pages detected within that window run as one batch.
    (With the default 500 µs delay the serial detector staggers the pages and each batch is one page's crops.)
    """
    sheet = express_sheet[0].read_bytes()
    with PageClient(batching_server.http_url) as client:
        single = [r.text for r in client.read(sheet)]
    crops = len(single)
    before = _recognizer_stats(batching_server.http_url)

    def ask(_: int) -> list[str]:
        with PageClient(batching_server.http_url) as c:
            return [r.text for r in c.read(sheet)]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(8)))
    after = _recognizer_stats(batching_server.http_url)
    assert answers == [single] * 8 and crops >= 2
    requests = after["inference_stats"]["success"]["count"] - before["inference_stats"]["success"]["count"]
    executions = after["execution_count"] - before["execution_count"]
    assert (requests, after["inference_count"] - before["inference_count"]) == (8, 8 * crops)
    assert executions < requests, f"{executions} recognizer executions for {requests} requests: no batching across pages"
    assert max(int(b["batch_size"]) for b in after["batch_stats"]) > crops
