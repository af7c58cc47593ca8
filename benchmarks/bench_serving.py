"""Bounded load against the real local tritonserver vs in-process ONNX Runtime on the same crops.

    .venv/bin/python benchmarks/bench_serving.py [--onnx M | --weights W] [--duration 10] [--concurrency 1 4 16]

Per protocol (HTTP, gRPC) and concurrency: ``c`` client processes (spawned, one tritonclient each) send
one crop per request, round-robin over the real crops, for a fixed duration; prints requests/s, p50/p99
latency, errors (must be 0: exit 1 otherwise) and the ratio to the in-process baseline.

Baseline (same process as the harness, same crops, same work per crop): encoded bytes →
``image_bytes_to_input`` → ONNX Runtime (default threads = all cores) on a batch of 1 → ``lowres_ocr.core.decoding.decode``,
one crop after the other. It is measured before and after the server runs; the ratio uses their mean.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _serving_common import default_crops_dir, load_crops, resolve_onnx  # noqa: E402


@dataclass
class Cell:
    protocol: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def in_process_rate(onnx: Path, crops: list[tuple[str, bytes]], duration: float) -> float:
    """Crops/s of the in-process pipeline, one crop per call, for ``duration`` seconds."""
    from lowres_ocr.core.decoding import decode
    from lowres_ocr.export.onnx_export import ort_session, read_metadata
    from lowres_ocr.serving.image_input import image_bytes_to_input

    session = ort_session(onnx)
    decoder = read_metadata(onnx).get("decoder", "ctc")
    session.run(["probs"], {"lr": image_bytes_to_input(crops[0][1])[None]})
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < duration:
        _, data = crops[done % len(crops)]
        probs = session.run(["probs"], {"lr": image_bytes_to_input(data)[None]})[0]
        decode(probs, decoder)
        done += 1
    return done / (time.perf_counter() - start)


def _client(url: str, protocol: str, crops: list[bytes], offset: int, duration: float, barrier, queue) -> None:
    from lowres_ocr.serving.client import OcrClient

    latencies, errors = [], 0
    with OcrClient(url, protocol) as client:  # type: ignore[arg-type]
        client.predict(crops[offset % len(crops)])  # warm-up: connection set up
        barrier.wait()
        i, start = offset, time.perf_counter()
        while time.perf_counter() - start < duration:
            t0 = time.perf_counter()
            try:
                client.predict(crops[i % len(crops)])
                latencies.append(time.perf_counter() - t0)
            except Exception:  # noqa: BLE001 - every failure counts as an error of the run
                errors += 1
            i += 1
        queue.put((latencies, errors, time.perf_counter() - start))


def run_cell(url: str, protocol: str, crops: list[bytes], concurrency: int, duration: float) -> Cell:
    ctx = mp.get_context("spawn")  # gRPC does not survive fork
    barrier, queue = ctx.Barrier(concurrency), ctx.Queue()
    procs = [ctx.Process(target=_client, args=(url, protocol, crops, k * 7, duration, barrier, queue)) for k in range(concurrency)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=duration + 120) for _ in procs]
    for p in procs:
        p.join(30)
    lat = np.array([x for r in results for x in r[0]]) * 1000
    seconds = max(r[2] for r in results)
    return Cell(protocol, concurrency, len(lat), sum(r[1] for r in results), seconds,
                float(np.percentile(lat, 50)) if len(lat) else float("nan"),
                float(np.percentile(lat, 99)) if len(lat) else float("nan"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx", type=Path)
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--data", type=Path, default=None, help="crops (dataset folder/LMDB/folder of sets); default data/ or the test fixture")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per cell")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--protocols", nargs="+", default=["http", "grpc"], choices=["http", "grpc"])
    ap.add_argument("--local-threads", type=int, default=2, help="ONNX Runtime threads of the served recognizer")
    ap.add_argument("--recognizer-instances", type=int, default=1)
    ap.add_argument("--preprocess-instances", type=int, default=2)
    ap.add_argument("--queue-delay-us", type=int, default=2000)
    args = ap.parse_args()

    from lowres_ocr.serving.configs import Scheduling
    from lowres_ocr.serving.repository import RepositoryOptions, write_repository
    from lowres_ocr.serving.server import TritonServer

    onnx, origin = resolve_onnx(args.onnx, args.weights)
    source = args.data or default_crops_dir()
    crops = load_crops(source, args.count)
    payloads = [data for _, data in crops]
    print(f"model: {origin}\ncrops: {len(crops)} from {source}")

    base_before = in_process_rate(onnx, crops, args.duration)
    print(f"in-process ONNX Runtime baseline (before): {base_before:.1f} crops/s")

    repo = Path(tempfile.mkdtemp(prefix="lowres_ocr_bench_repo_"))
    options = RepositoryOptions(
        local=True,
        preprocess=Scheduling(instances=args.preprocess_instances, max_queue_delay_us=0),
        recognizer=Scheduling(instances=args.recognizer_instances, max_queue_delay_us=args.queue_delay_us),
        decode=Scheduling(max_queue_delay_us=0),
        local_threads=args.local_threads,
    )
    write_repository(onnx, repo, options=options)
    cells: list[Cell] = []
    with TritonServer(repo, ready_timeout=120) as server:
        for protocol in args.protocols:
            url = server.http_url if protocol == "http" else server.grpc_url
            for c in args.concurrency:
                cells.append(run_cell(url, protocol, payloads, c, args.duration))
                cell = cells[-1]
                print(f"  {protocol:4s} c={c:<3d} {cell.rps:7.1f} req/s  p50 {cell.p50_ms:6.1f} ms  p99 {cell.p99_ms:6.1f} ms  errors {cell.errors}", flush=True)
    base_after = in_process_rate(onnx, crops, args.duration)
    baseline = statistics.mean([base_before, base_after])
    print(f"in-process ONNX Runtime baseline (after): {base_after:.1f} crops/s; mean {baseline:.1f}")

    print("\n| protocol | concurrency | req/s | p50 ms | p99 ms | errors | ratio to in-process ORT |")
    print("|---|---|---|---|---|---|---|")
    for cell in cells:
        print(f"| {cell.protocol} | {cell.concurrency} | {cell.rps:.1f} | {cell.p50_ms:.1f} | {cell.p99_ms:.1f} | {cell.errors} | {cell.rps / baseline:.2f} |")
    print(f"| in-process ORT (batch 1, {len(crops)} crops) | 1 | {baseline:.1f} | | | 0 | 1.00 |")
    errors = sum(c.errors for c in cells)
    if errors:
        print(f"FAIL: {errors} errors", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
