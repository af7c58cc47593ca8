"""Bounded load against the real local tritonserver vs in-process ONNX Runtime on the same crops.

    .venv/bin/python benchmarks/bench_serving.py [--onnx M | --weights W] [--duration 10] [--concurrency 1 4 16]

Per protocol (HTTP, gRPC) and concurrency ``c``: ``c`` requests of one crop each kept in flight, round-robin over
the real crops, for a fixed duration; prints requests/s, p50/p99 latency, errors (must be 0: exit 1 otherwise) and the
ratio to the in-process baseline. The load comes from one client process with ``c`` asyncio tasks (tritonclient's aio
clients; the way perf_analyzer keeps ``c`` requests outstanding), so on a small machine the load generator takes
little of the cores the server is measured on; ``--client processes`` starts ``c`` client processes instead (one
blocking tritonclient each), the heavier load of ``c`` independent callers.

Baselines (same process as the harness, same crops, one call after the other), each measured before and after the
server runs; the ratios use their mean:
- in-process ONNX Runtime: encoded bytes → ``image_bytes_to_input`` (the model's input geometry) → ONNX Runtime
  (default threads = all cores), batch 1 → ``lowres_ocr.core.decoding.decode`` with the model's charset;
- rapidocr's PP-OCRv6 recognizer on the same bytes, batch 1 and batch 16 (``--no-rapidocr`` leaves it out).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _serving_common import InProcessReader, default_crops_dir, load_crops, rapidocr_reader, resolve_onnx  # noqa: E402


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


def sequential_rate(read: Callable[[list[bytes]], list[str]], crops: list[bytes], duration: float, batch: int = 1) -> float:
    """Crops/s of ``read`` called on ``batch`` crops at a time, one call after the other, for ``duration`` seconds."""
    read(crops[:batch])  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < duration:
        read([crops[(done + k) % len(crops)] for k in range(batch)])
        done += batch
    return done / (time.perf_counter() - start)


def baselines(onnx: Path, crops: list[bytes], duration: float, rapidocr: bool) -> dict[str, float]:
    """The in-process readers the served rates are compared with (same crops, same cores, this process)."""
    rates = {"in-process ORT, batch 1": sequential_rate(InProcessReader(onnx), crops, duration)}
    if rapidocr:
        rates["rapidocr rec, batch 1"] = sequential_rate(rapidocr_reader(batch=1), crops, duration)
        rates["rapidocr rec, batch 16"] = sequential_rate(rapidocr_reader(batch=16), crops, duration, batch=16)
    return rates


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


async def _async_load(url: str, protocol: str, crops: list[bytes], concurrency: int, duration: float) -> tuple[list[float], int, float]:
    """``concurrency`` tasks on one aio tritonclient, each sending its next crop as soon as its answer is back."""
    import importlib

    from lowres_ocr.serving.configs import ENSEMBLE

    module = importlib.import_module(f"tritonclient.{protocol}.aio")
    client = module.InferenceServerClient(url)

    def request(i: int) -> tuple[list, list]:
        inp = module.InferInput("image", [1, 1], "BYTES")
        arr = np.array([[crops[i % len(crops)]]], dtype=np.object_)
        if protocol == "http":
            inp.set_data_from_numpy(arr, binary_data=True)
            return [inp], [module.InferRequestedOutput(n, binary_data=True) for n in ("text", "confidence")]
        inp.set_data_from_numpy(arr)
        return [inp], [module.InferRequestedOutput(n) for n in ("text", "confidence")]

    latencies: list[float] = []
    errors = 0

    async def worker(offset: int, start: float) -> None:
        nonlocal errors
        i = offset
        while time.perf_counter() - start < duration:
            inputs, outputs = request(i)
            t0 = time.perf_counter()
            try:
                result = await client.infer(ENSEMBLE, inputs, outputs=outputs)
                result.as_numpy("text")
                latencies.append(time.perf_counter() - t0)
            except Exception:  # noqa: BLE001 - every failure counts as an error of the run
                errors += 1
            i += 1

    try:
        warmups = [request(k * 7) for k in range(concurrency)]  # warm-up: connections set up
        await asyncio.gather(*(client.infer(ENSEMBLE, inputs, outputs=outputs) for inputs, outputs in warmups))
        start = time.perf_counter()
        await asyncio.gather(*(worker(k * 7, start) for k in range(concurrency)))
        return latencies, errors, time.perf_counter() - start
    finally:
        await client.close()


def run_cell(url: str, protocol: str, crops: list[bytes], concurrency: int, duration: float, client: str = "async") -> Cell:
    if client == "async":
        latencies, errors, seconds = asyncio.run(_async_load(url, protocol, crops, concurrency, duration))
    else:
        latencies, errors, seconds = _run_processes(url, protocol, crops, concurrency, duration)
    lat = np.array(latencies) * 1000
    return Cell(protocol, concurrency, len(lat), errors, seconds,
                float(np.percentile(lat, 50)) if len(lat) else float("nan"),
                float(np.percentile(lat, 99)) if len(lat) else float("nan"))


def _run_processes(url: str, protocol: str, crops: list[bytes], concurrency: int, duration: float) -> tuple[list[float], int, float]:
    """``concurrency`` spawned client processes, one blocking tritonclient each: latencies (s), errors, seconds."""
    ctx = mp.get_context("spawn")  # gRPC does not survive fork
    barrier, queue = ctx.Barrier(concurrency), ctx.Queue()
    procs = [ctx.Process(target=_client, args=(url, protocol, crops, k * 7, duration, barrier, queue)) for k in range(concurrency)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=duration + 120) for _ in procs]
    for p in procs:
        p.join(30)
    return [x for r in results for x in r[0]], sum(r[1] for r in results), max(r[2] for r in results)


def batching(url: str) -> dict[str, float]:
    """Mean requests per execution of every model in the repository: how much dynamic batching gathered."""
    import tritonclient.http as http

    client = http.InferenceServerClient(url)
    try:
        stats = client.get_inference_statistics()["model_stats"]
    finally:
        client.close()
    return {m["name"]: int(m["inference_count"]) / int(m["execution_count"]) for m in stats if int(m.get("execution_count", 0))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx", type=Path)
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--data", type=Path, default=None, help="crops (dataset folder/LMDB/folder of sets); default data/ or the test fixture")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per cell")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--protocols", nargs="+", default=["http", "grpc"], choices=["http", "grpc"])
    ap.add_argument("--local-threads", type=int, default=1, help="ONNX Runtime threads of each served recognizer instance")
    ap.add_argument("--recognizer-instances", type=int, default=2)
    ap.add_argument("--preprocess-instances", type=int, default=2)
    ap.add_argument("--queue-delay-us", type=int, default=2000, help="the recognizer's max queue delay")
    ap.add_argument("--step-queue-delay-us", type=int, default=1000, help="max queue delay of preprocess and decode")
    ap.add_argument("--no-rapidocr", action="store_true", help="leave out rapidocr's recognizer as a baseline")
    ap.add_argument("--client", choices=["async", "processes"], default="async",
                    help="load generator: one process with c asyncio requests in flight, or c client processes")
    args = ap.parse_args()

    from lowres_ocr.serving.configs import Scheduling
    from lowres_ocr.serving.repository import RepositoryOptions, write_repository
    from lowres_ocr.serving.server import TritonServer

    onnx, origin = resolve_onnx(args.onnx, args.weights)
    source = args.data or default_crops_dir()
    crops = load_crops(source, args.count)
    payloads = [data for _, data in crops]
    print(f"model: {origin}\ncrops: {len(crops)} from {source}\nload: {args.client} client")

    before = baselines(onnx, payloads, args.duration, not args.no_rapidocr)
    print("baselines (before): " + ", ".join(f"{k} {v:.1f} crops/s" for k, v in before.items()), flush=True)

    repo = Path(tempfile.mkdtemp(prefix="lowres_ocr_bench_repo_"))
    options = RepositoryOptions(
        local=True,
        preprocess=Scheduling(instances=args.preprocess_instances, max_queue_delay_us=args.step_queue_delay_us),
        recognizer=Scheduling(instances=args.recognizer_instances, max_queue_delay_us=args.queue_delay_us),
        decode=Scheduling(max_queue_delay_us=args.step_queue_delay_us),
        local_threads=args.local_threads,
    )
    write_repository(onnx, repo, options=options)
    cells: list[Cell] = []
    with TritonServer(repo, ready_timeout=120) as server:
        for protocol in args.protocols:
            url = server.http_url if protocol == "http" else server.grpc_url
            for c in args.concurrency:
                cells.append(run_cell(url, protocol, payloads, c, args.duration, args.client))
                cell = cells[-1]
                print(f"  {protocol:4s} c={c:<3d} {cell.rps:7.1f} req/s  p50 {cell.p50_ms:6.1f} ms  p99 {cell.p99_ms:6.1f} ms  errors {cell.errors}", flush=True)
        print("requests per model execution (Triton statistics, all cells): " + ", ".join(
            f"{name} {n:.1f}" for name, n in batching(server.http_url).items()))
    after = baselines(onnx, payloads, args.duration, not args.no_rapidocr)
    print("baselines (after): " + ", ".join(f"{k} {v:.1f} crops/s" for k, v in after.items()))
    mean = {k: statistics.mean([before[k], after[k]]) for k in before}

    names = list(mean)
    print("\n| protocol | concurrency | req/s | p50 ms | p99 ms | errors | " + " | ".join(f"ratio to {k}" for k in names) + " |")
    print("|---|---|---|---|---|---|" + "---|" * len(names))
    for cell in cells:
        ratios = " | ".join(f"{cell.rps / mean[k]:.2f}" for k in names)
        print(f"| {cell.protocol} | {cell.concurrency} | {cell.rps:.1f} | {cell.p50_ms:.1f} | {cell.p99_ms:.1f} | {cell.errors} | {ratios} |")
    for k in names:
        print(f"| {k} ({len(crops)} crops, mean of before and after) | – | {mean[k]:.1f} | | | 0 | |")
    errors = sum(c.errors for c in cells)
    if errors:
        print(f"FAIL: {errors} errors", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
