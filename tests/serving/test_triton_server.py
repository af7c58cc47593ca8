"""Integration: the real tritonserver (nvidia-pytriton wheel) serves the ensemble over HTTP and gRPC.

Predictions equal the in-process PyTorch model's on the 210 real crops the repo carries; bad inputs fail
cleanly for that client only, and the next good request succeeds.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tritonclient.utils import InferenceServerException
from typer.testing import CliRunner

from lowres_ocr.cli import app as cli_app
from lowres_ocr.serving.client import OcrClient
from lowres_ocr.serving.server import TritonServer, free_port

pytestmark = pytest.mark.integration
PROTOCOLS = ["http", "grpc"]


def _url(server: TritonServer, protocol: str) -> str:
    return server.http_url if protocol == "http" else server.grpc_url


def _png(width: int, height: int, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (width, height), 255 if mode == "L" else (255, 255, 255)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_predictions_equal_in_process_model(triton: TritonServer, served_model, protocol: str) -> None:
    """One request per crop from 4 concurrent clients (the dynamic batcher mixes them); ≥ 100 real crops."""
    crops = served_model.crops
    assert len(crops) >= 100

    def worker(part: list[int]) -> list[tuple[int, str, float]]:
        with OcrClient(_url(triton, protocol), protocol) as client:
            return [(i, *_as_tuple(client.predict(crops[i][1]))) for i in part]

    with ThreadPoolExecutor(4) as pool:
        results = sorted(r for part in pool.map(worker, [list(range(k, len(crops), 4)) for k in range(4)]) for r in part)
    texts = [t for _, t, _ in results]
    confidences = np.array([c for _, _, c in results])
    mismatches = [(crops[i][0], served_model.texts[i], t) for i, t in enumerate(texts) if t != served_model.texts[i]]
    assert not mismatches, f"{served_model.name}: {len(mismatches)} differ, e.g. {mismatches[:5]}"
    np.testing.assert_allclose(confidences, served_model.confidences, atol=2e-3)
    assert len(set(texts)) > 20, "the served model should read different words on different crops"


def _as_tuple(pred) -> tuple[str, float]:
    return pred.text, pred.confidence


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_one_request_with_several_images(triton: TritonServer, served_model, protocol: str) -> None:
    with OcrClient(_url(triton, protocol), protocol) as client:
        preds = client.predict_batch([data for _, data in served_model.crops[:7]])
    assert [p.text for p in preds] == served_model.texts[:7]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_any_colour_mode_is_accepted(triton: TritonServer, protocol: str) -> None:
    with OcrClient(_url(triton, protocol), protocol) as client:
        for mode in ("L", "RGB", "RGBA", "P"):
            pred = client.predict(_png(40, 12, mode))
            assert isinstance(pred.text, str) and 0.0 <= pred.confidence <= 1.0


BAD_IMAGES = {
    "non-image bytes": (b"this is not an image", "not a decodable image"),
    "empty input": (b"", "empty input"),
    "1x1 image": (_png(1, 1), "smaller than the 4 px minimum side"),
    "4000x4000 image": (_png(4000, 4000), "exceeds the limits"),
    "truncated PNG": (_png(64, 16)[:40], "not a decodable image"),
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_bad_image_fails_cleanly(triton: TritonServer, served_model, protocol: str, case: str) -> None:
    data, message = BAD_IMAGES[case]
    with OcrClient(_url(triton, protocol), protocol) as client:
        with pytest.raises(InferenceServerException) as err:
            client.predict(data)
        expected = "400" if protocol == "http" else "StatusCode.INVALID_ARGUMENT"
        assert err.value.status() == expected and message in err.value.message()
        assert client.predict(served_model.crops[0][1]).text == served_model.texts[0]  # next good request
    assert triton.is_ready()


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "array,datatype,message",
    [
        (np.zeros((1, 1), np.float32), "FP32", "data-type is 'FP32'"),
        (np.array([[b"a", b"b"]], dtype=np.object_), "BYTES", "unexpected shape"),
        (np.zeros((1, 3, 16, 64), np.float32), "FP32", "data-type is 'FP32'"),
    ],
    ids=["wrong-dtype", "wrong-shape", "tensor-instead-of-bytes"],
)
def test_wrong_dtype_or_shape_fails_cleanly(triton: TritonServer, served_model, protocol: str, array, datatype, message) -> None:
    with OcrClient(_url(triton, protocol), protocol) as client:
        with pytest.raises(InferenceServerException) as err:
            client.infer_raw(array, datatype=datatype)
        expected = "400" if protocol == "http" else "StatusCode.INVALID_ARGUMENT"
        assert err.value.status() == expected and message in err.value.message()
        assert client.predict(served_model.crops[1][1]).text == served_model.texts[1]


def test_bad_image_in_a_batch_fails_only_its_request(triton: TritonServer, served_model) -> None:
    """A good and a bad request in flight together: only the bad one fails."""
    good = served_model.crops[2][1]
    with ThreadPoolExecutor(2) as pool, OcrClient(triton.grpc_url, "grpc") as c1, OcrClient(triton.grpc_url, "grpc") as c2:
        bad_future = pool.submit(c1.predict, b"garbage")
        good_future = pool.submit(c2.predict, good)
        assert good_future.result().text == served_model.texts[2]
        with pytest.raises(InferenceServerException):
            bad_future.result()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_infer_command(triton: TritonServer, served_model, protocol: str, tmp_path: Path) -> None:
    files = []
    for i in range(3):
        files.append(tmp_path / f"crop{i}.png")
        files[-1].write_bytes(served_model.crops[i][1])
    result = CliRunner().invoke(cli_app, ["infer", "--url", _url(triton, protocol), "--protocol", protocol, *map(str, files)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split("\t")[1] for line in lines] == served_model.texts[:3]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    result = CliRunner().invoke(cli_app, ["infer", "--url", _url(triton, protocol), "--protocol", protocol, str(bad), str(files[0])])
    assert result.exit_code == 1 and "ERROR" in result.output and served_model.texts[0] in result.output


def test_serve_start_command_stops_cleanly_on_sigterm(local_repo: Path) -> None:
    """`lowres-ocr serve start` as a real process: ready line, serves, SIGTERM → rc 0 and no /dev/shm leftovers."""
    http, grpc, metrics = free_port(), free_port(), free_port()
    before = set(os.listdir("/dev/shm"))
    cmd = [sys.executable, "-m", "lowres_ocr.cli", "serve", "start", "--repo", str(local_repo),
           "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        line = ""
        while time.monotonic() < deadline and "ready" not in line:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "serve start exited early"
        assert f"127.0.0.1:{http}" in line
        with OcrClient(f"127.0.0.1:{grpc}", "grpc") as client:
            assert client.is_ready()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "stopped (rc=0)" in out
    # only this server's regions: other servers of the same test session (fixtures) may hold their own
    leftovers = [f for f in set(os.listdir("/dev/shm")) - before if f.startswith(f"lrocr_{proc.pid}_")]
    assert not leftovers


def test_server_that_cannot_start_fails_within_its_deadline(tmp_path: Path) -> None:
    repo = tmp_path / "repo" / "broken"
    (repo / "1").mkdir(parents=True)
    (repo / "config.pbtxt").write_text('name: "broken"\nbackend: "python"\n')  # no model.py: load fails
    from lowres_ocr.serving.server import TritonStartError

    start = time.monotonic()
    with pytest.raises(TritonStartError, match="exited with rc=|not ready"):
        TritonServer(tmp_path / "repo", ready_timeout=15).start()
    assert time.monotonic() - start < 45  # bounded: the deadline plus the stop


def test_smoke_test_of_the_deployment(triton: TritonServer, served_model) -> None:
    from lowres_ocr.serving.smoke import smoke_test

    images = [data for _, data in served_model.crops[:10]]
    report = smoke_test(triton.http_url, triton.grpc_url, images, served_model.texts[:10])
    assert report.passed, report.as_dict()
    assert [r.bad_input_status for r in report.results] == ["400", "StatusCode.INVALID_ARGUMENT"]
    wrong = smoke_test(triton.http_url, None, images[:2], ["definitely-not-this", served_model.texts[1]])
    assert not wrong.passed and "1 of 2 predictions differ" in wrong.results[0].errors[0]
    dead = smoke_test(None, f"127.0.0.1:{free_port()}", images[:1])
    assert not dead.passed and dead.results[0].errors


def test_smoke_command(triton: TritonServer) -> None:
    crops = Path(__file__).resolve().parents[1] / "fixtures" / "real_crops"
    args = ["serve", "smoke", "--http-url", triton.http_url, "--grpc-url", triton.grpc_url, "--data", str(crops), "--count", "5"]
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    assert '"passed": true' in result.output
    dead = CliRunner().invoke(cli_app, ["serve", "smoke", "--grpc-url", f"127.0.0.1:{free_port()}", "--data", str(crops), "--count", "1"])
    assert dead.exit_code == 1 and '"passed": false' in dead.output
