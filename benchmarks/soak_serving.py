"""Soak of the real local tritonserver: both endpoints, both protocols, several concurrencies, ≥ 60 s per cell.

    .venv/bin/python benchmarks/soak_serving.py [--seconds 60] [--out soak.json] [--onnx M | --weights W]

Writes a --local repository with the page endpoint (the ONNX export of model/lowres_ocr.pt by default) and
starts ``TritonServer`` with its metrics port on. Per model and per (protocol, concurrency) cell, ``c`` client
threads (one tritonclient each, in this process) send requests back to back for ``--seconds``:
``lowres_ocr`` one real crop per request (data/textzoom_easy when present, else tests/fixtures/real_crops),
``lowres_ocr_page`` one whole image per request (tests/fixtures/ic15_e2e/*.jpg and a rendered sheet).
A warm-up (``--warmup`` s per protocol at the model's top concurrency, counted in the client's successes)
precedes the first RSS reading. Prints per cell requests, errors, p50/p99 latency and requests/s; the server's RSS (tritonserver + its
backend stubs) before and after each model's soak; and at the end Triton's ``nv_inference_request_success``
and ``nv_inference_count`` per model beside the client's count of successful requests.
Exit 1 when a cell has errors, an RSS grows by 10 % or more, or a metrics count differs from the client's.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _serving_common import ROOT, load_crops, resolve_onnx  # noqa: E402

CROP_MODEL, PAGE_MODEL = "lowres_ocr", "lowres_ocr_page"
IC15 = ROOT / "tests" / "fixtures" / "ic15_e2e"
FONT = ROOT / "lowres_ocr" / "fonts" / "LiberationSans-Regular.ttf"


@dataclass
class Cell:
    model: str
    protocol: str
    concurrency: int
    seconds: float
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    rps: float
    first_error: str


def crop_source() -> Path:
    easy = ROOT / "data" / "textzoom_easy"
    return easy if (easy / "labels.tsv").is_file() else ROOT / "tests" / "fixtures" / "real_crops"


def rendered_sheet() -> bytes:
    """A 1000x700 PNG of printed lines (shipping-label words), drawn here with a bundled font."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (1000, 700), (247, 245, 240))
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(FONT), 34)
    words = ["PRIORITY MAIL", "ORDER 20417-88", "SHIP TO: HARBOUR ROAD 12", "WEIGHT 2.4 KG", "FRAGILE", "TRACKING 9400111"]
    for i, text in enumerate(words):
        draw.text((50 + (i % 2) * 40, 50 + i * 105), text, fill=(25, 25, 30), font=font)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def page_images() -> list[bytes]:
    return [p.read_bytes() for p in sorted(IC15.glob("*.jpg"))] + [rendered_sheet()]


def make_sender(model: str, url: str, protocol: str) -> tuple[Callable[[bytes], object], Callable[[], None]]:
    """A (send one item, close) pair: one crop through OcrClient.predict or one page through PageClient.read."""
    if model == PAGE_MODEL:
        from lowres_ocr.page.client import PageClient

        page = PageClient(url, protocol)  # type: ignore[arg-type]
        return page.read, page.close
    from lowres_ocr.serving.client import OcrClient

    crop = OcrClient(url, protocol)  # type: ignore[arg-type]
    return crop.predict, crop.close


def run_cell(model: str, url: str, protocol: str, concurrency: int, items: list[bytes], seconds: float) -> Cell:
    """``concurrency`` threads send back to back until ``seconds`` pass; in-flight requests are let finish."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors: list[str] = []
    deadline = time.monotonic() + seconds

    def worker(k: int) -> None:
        send, close = make_sender(model, url, protocol)
        i = k
        try:
            while time.monotonic() < deadline:
                start = time.perf_counter()
                try:
                    send(items[i % len(items)])
                    latencies[k].append(time.perf_counter() - start)
                except Exception as err:  # noqa: BLE001 (every failure is counted and the first one shown)
                    errors.append(f"{type(err).__name__}: {err}"[:200])
                i += concurrency
        finally:
            close()

    begin = time.monotonic()
    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - begin
    lat = np.array([x for per in latencies for x in per]) * 1000
    p50, p99 = (float(np.percentile(lat, q)) for q in (50, 99)) if len(lat) else (float("nan"), float("nan"))
    return Cell(model, protocol, concurrency, round(elapsed, 1), len(lat), len(errors), round(p50, 1), round(p99, 1),
                round(len(lat) / elapsed, 2), errors[0] if errors else "")


def server_rss_mib(server: object) -> float:
    """Resident memory of tritonserver and its python backend stubs (its process group), in MiB."""
    import psutil

    total = 0
    for pid in server.group_pids():  # type: ignore[attr-defined]
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def read_metrics(url: str) -> dict[str, dict[str, float]]:
    """``{metric: {model: value}}`` for nv_inference_request_success and nv_inference_count."""
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    found: dict[str, dict[str, float]] = {"nv_inference_request_success": {}, "nv_inference_count": {}}
    for line in text.splitlines():
        m = re.match(r'(nv_inference_request_success|nv_inference_count)\{.*model="([^"]+)".*\}\s+(\S+)', line)
        if m:
            found[m.group(1)][m.group(2)] = float(m.group(3))
    return found


def soak_model(server: object, model: str, items: list[bytes], args: argparse.Namespace) -> dict[str, object]:
    """Warm-up, RSS, every (protocol, concurrency) cell, RSS again; returns cells, RSS and successful requests."""
    urls = {"http": server.http_url, "grpc": server.grpc_url}  # type: ignore[attr-defined]
    concurrencies = args.page_concurrency if model == PAGE_MODEL else args.concurrency
    warm = [run_cell(model, urls[p], p, max(concurrencies), items, args.warmup) for p in ("http", "grpc")]
    rss_start = server_rss_mib(server)
    cells = list(warm)
    for protocol in ("http", "grpc"):
        for c in concurrencies:
            cell = run_cell(model, urls[protocol], protocol, c, items, args.seconds)
            print(f"{model:16s} {protocol:4s} c={c:<3d} requests {cell.requests:6d}  errors {cell.errors}  "
                  f"p50 {cell.p50_ms:8.1f} ms  p99 {cell.p99_ms:8.1f} ms  {cell.rps:7.2f} req/s {cell.first_error}",
                  flush=True)
            cells.append(cell)
    rss_end = server_rss_mib(server)
    print(f"{model}: server RSS {rss_start:.0f} MiB at start, {rss_end:.0f} MiB at end "
          f"({100 * (rss_end / rss_start - 1):+.1f} %)", flush=True)
    return {"cells": [asdict(c) for c in cells[len(warm):]], "warmup": [asdict(c) for c in warm], "rss_start_mib": round(rss_start, 1),
            "rss_end_mib": round(rss_end, 1), "client_successes": sum(c.requests for c in cells)}


def print_table(report: dict[str, object]) -> None:
    print("\n| model | protocol | concurrency | requests | errors | p50 ms | p99 ms | req/s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for model in (CROP_MODEL, PAGE_MODEL):
        for c in report[model]["cells"]:  # type: ignore[index]
            print(f"| {model} | {c['protocol']} | {c['concurrency']} | {c['requests']} | {c['errors']} | "
                  f"{c['p50_ms']} | {c['p99_ms']} | {c['rps']} |")


def check(report: dict) -> list[str]:
    """The failed goals: errors, RSS growth ≥ 10 %, metrics ≠ client successes."""
    failed = []
    for model in (CROP_MODEL, PAGE_MODEL):
        r = report[model]
        if any(c["errors"] for c in r["cells"]):
            failed.append(f"{model}: errors")
        if r["rss_end_mib"] >= 1.10 * r["rss_start_mib"]:
            failed.append(f"{model}: RSS grew {r['rss_start_mib']} → {r['rss_end_mib']} MiB")
        for metric in ("nv_inference_request_success", "nv_inference_count"):
            served = report["metrics"][metric].get(model)
            print(f"{model}: {metric} = {served}, client successes = {r['client_successes']}")
            if served != r["client_successes"]:
                failed.append(f"{model}: {metric} {served} ≠ {r['client_successes']}")
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per cell (the reported figures use ≥ 60)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--page-concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds per protocol at the top concurrency before the first RSS")
    parser.add_argument("--onnx", type=Path)
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--out", type=Path, help="JSON report")
    args = parser.parse_args()
    from lowres_ocr.page.serving import PageOptions
    from lowres_ocr.serving.repository import RepositoryOptions, write_repository
    from lowres_ocr.serving.server import TritonServer

    onnx, source = resolve_onnx(args.onnx, args.weights)
    repo = write_repository(onnx, Path(tempfile.mkdtemp(prefix="lowres_ocr_soak_")) / "models",
                            options=RepositoryOptions(local=True, page=PageOptions()))
    crops = [data for _, data in load_crops(crop_source(), 2000)]
    report: dict = {"model": source, "crops": str(crop_source()), "crop_count": len(crops), "seconds": args.seconds}
    print(f"model: {source}; {len(crops)} crops from {crop_source()}; {args.seconds:.0f} s per cell", flush=True)
    with TritonServer(repo, metrics=True, ready_timeout=180) as server:
        report[CROP_MODEL] = soak_model(server, CROP_MODEL, crops, args)
        report[PAGE_MODEL] = soak_model(server, PAGE_MODEL, page_images(), args)
        report["metrics"] = read_metrics(server.metrics_url)
    print_table(report)
    report["failed"] = check(report)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    print("FAILED: " + "; ".join(report["failed"]) if report["failed"] else "all goals met")
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
