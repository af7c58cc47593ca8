"""Pages per second on whole images: our reader in process, served (page endpoint) and rapidocr's full pipeline.

    .venv/bin/python benchmarks/bench_pages.py [--images data/ic15_e2e_test/images] [--limit 20] [--concurrency 1 4]
                                              [--weights model/lowres_ocr.pt]

Same images, same work per page (the encoded file in, its text lines out), every image once per measurement,
one warm-up page before each; pages/s = images / wall time:

- in process: ``load_page`` + ``PageReader.read`` (the rapidocr wheel's detector on ONNX Runtime + the PyTorch
  checkpoint; threads: all cores, or --threads);
- served: the local tritonserver on 127.0.0.1, a --local repository (python backends) with the page endpoint
  made from the checkpoint's ONNX export (detector and recognizer: one ONNX Runtime thread per instance), HTTP;
  ``c`` client threads (one ``PageClient`` each) share the images;
- rapidocr (the baseline): ``cv2.imdecode`` + ``RapidOCR()(bgr, return_word_box=True)`` (its detector, direction
  classifier and recognizer; threads: all cores, or --threads). Measured before and after the server runs;
  ratios use the mean. On a busy machine (other jobs on the cores) all-core thread pools lose most.

Exit 1 when a served request fails.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _serving_common import PAGES_DIR, RELEASED, page_files, page_repository, resolve_onnx  # noqa: E402


def timed_rate(read: Callable[[bytes], object], pages: list[bytes]) -> float:
    """Pages/s of ``read`` over ``pages`` one after the other, after one warm-up page."""
    read(pages[0])
    start = time.perf_counter()
    for data in pages:
        read(data)
    return len(pages) / (time.perf_counter() - start)


def in_process_reader(weights: Path, threads: int) -> Callable[[bytes], object]:
    """``PageReader`` on ``weights``; ``threads`` > 0 caps PyTorch's and the detector's ONNX Runtime threads."""
    import torch

    from lowres_ocr.network.inference import Recognizer
    from lowres_ocr.page.detect import Detector
    from lowres_ocr.page.reader import PageReader, load_page

    if threads:
        torch.set_num_threads(threads)
    reader = PageReader(Recognizer.load(weights), Detector(threads=threads))
    return lambda data: reader.read(load_page(data, "page"))


def rapidocr_reader(threads: int) -> Callable[[bytes], object]:
    """rapidocr's full pipeline with its word boxes; ``threads`` > 0 caps its ONNX Runtime threads."""
    import cv2
    from rapidocr import RapidOCR

    engine = RapidOCR(params={"Global.log_level": "error", "EngineConfig.onnxruntime.intra_op_num_threads": threads or -1})
    return lambda data: engine(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), return_word_box=True)


def served_rate(url: str, pages: list[bytes], concurrency: int) -> tuple[float, list[str]]:
    """(pages/s, the failed requests' errors) with ``concurrency`` client threads sharing ``pages`` round-robin.

    Each thread makes its own ``PageClient`` (tritonclient's HTTP client must stay on the thread that made it)
    and reads one warm-up page; the clock starts when all are ready and stops when the last one is done.
    """
    from lowres_ocr.page.client import PageClient

    ready = threading.Barrier(concurrency + 1)

    def run(k: int) -> list[str]:
        failed = []
        with PageClient(url, "http") as client:
            try:
                client.read(pages[k % len(pages)])
            finally:
                ready.wait(timeout=600)
            for data in pages[k::concurrency]:
                try:
                    client.read(data)
                except Exception as err:  # noqa: BLE001 - every failure counts against the run
                    failed.append(f"{type(err).__name__}: {err}"[:300])
        return failed

    with ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(run, k) for k in range(concurrency)]
        ready.wait(timeout=600)
        start = time.perf_counter()
        failed = [e for f in futures for e in f.result()]
        seconds = time.perf_counter() - start
    return len(pages) / seconds, failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, default=PAGES_DIR, help="folder of whole images")
    ap.add_argument("--limit", type=int, default=20, help="first N images by name (0 = all)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4], help="client threads of the served runs")
    ap.add_argument("--weights", type=Path, default=RELEASED, help="recognizer checkpoint (served: its ONNX export)")
    ap.add_argument("--page-instances", type=int, default=2, help="instances of the served page model")
    ap.add_argument("--threads", type=int, default=0, help="in-process and rapidocr compute threads (0: all cores)")
    args = ap.parse_args()
    from lowres_ocr.serving.server import TritonServer

    if not args.weights.is_file():
        raise SystemExit(f"{args.weights}: checkpoint not found")
    paths = page_files(args.images, args.limit)
    pages = [p.read_bytes() for p in paths]
    print(f"{len(pages)} images from {args.images}; model {args.weights}", flush=True)
    rapid = [timed_rate(rapidocr_reader(args.threads), pages)]
    print(f"rapidocr full pipeline (before): {rapid[0]:.3f} pages/s", flush=True)
    rates = {"in process (PageReader)": timed_rate(in_process_reader(args.weights, args.threads), pages)}
    onnx, origin = resolve_onnx(None, args.weights)
    failed: list[str] = []
    with TritonServer(page_repository(onnx, args.page_instances), ready_timeout=180) as server:
        for c in args.concurrency:
            rate, errors = served_rate(server.http_url, pages, c)
            rates[f"served HTTP c={c} ({args.page_instances} page instances)"] = rate
            print(f"served HTTP c={c}: {rate:.3f} pages/s, {len(errors)} failed {errors[:1]}", flush=True)
            failed += errors
    rapid.append(timed_rate(rapidocr_reader(args.threads), pages))
    baseline = statistics.mean(rapid)
    print(f"rapidocr full pipeline (after): {rapid[1]:.3f} pages/s; mean {baseline:.3f}\nserved model: {origin}")
    print("\n| reader | pages/s | ratio to rapidocr |\n|---|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.3f} | {rate / baseline:.2f} |")
    print(f"| rapidocr full pipeline (baseline) | {baseline:.3f} | 1.00 |")
    if failed:
        print(f"FAIL: {len(failed)} served requests failed, first: {failed[0]}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
