"""Data-stage throughput: LMDB build (images/s) and LR/HR synthesis (pairs/s per core).

Each number is printed with its ratio to a baseline measured in the same process just before: decoding the
same 32x128 PNGs from memory with PIL (the work a build cannot avoid: every image is fully decoded to find
corrupt files). Wall time and process CPU time are both reported; on a machine shared with other jobs the
CPU-time rate is the per-core figure.

    .venv/bin/python benchmarks/bench_data.py [--build-images 5000] [--synth-pairs 3000]
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import cv2
from PIL import Image

from lowres_ocr.data.build import build_lmdb
from lowres_ocr.data.lmdb_io import LmdbReader
from lowres_ocr.data.synth import synthesize


def _timed(fn) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def _decode_all(blobs: list[bytes]) -> None:
    for b in blobs:
        with Image.open(io.BytesIO(b)) as im:
            im.load()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-images", type=int, default=5000)
    ap.add_argument("--synth-pairs", type=int, default=3000)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (other jobs share the cores)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # a folder of N distinct 32x128 PNG word crops (rendered by the synthesizer, written by it)
        synthesize(tmp / "src", args.build_images, seed=123)
        blobs = [p.read_bytes() for p in sorted((tmp / "src" / "hr").glob("*.png"))]
        n = len(blobs)
        _decode_all(blobs[:200])  # warm up
        dec_wall, dec_cpu = _timed(lambda: _decode_all(blobs))
        base_wall, base_cpu = n / dec_wall, n / dec_cpu
        print(f"baseline  PIL decode of {n} 32x128 PNGs from memory: {base_wall:8.0f} images/s wall, "
              f"{base_cpu:8.0f} images/CPU-s")

        words = tmp / "words"
        (words / "hr").mkdir(parents=True)
        lines = []
        for i, b in enumerate(blobs):
            (words / "hr" / f"{i}.png").write_bytes(b)
            lines.append(f"hr/{i}.png\tw{i}\n")
        (words / "labels.tsv").write_text("".join(lines), encoding="utf-8")
        rep: list = []
        b_wall, b_cpu = _timed(lambda: rep.append(build_lmdb([words], tmp / "lmdb")))
        assert rep[0].kept == n == len(LmdbReader(tmp / "lmdb"))
        print(f"build-lmdb  {n} PNGs from a folder -> ASTER LMDB: {n / b_wall:8.0f} images/s wall "
              f"({n / b_wall / base_wall:.2f} x baseline), {n / b_cpu:8.0f} images/CPU-s ({n / b_cpu / base_cpu:.2f} x); "
              f"target >= 3000 images/s")

        m = args.synth_pairs
        s_wall, s_cpu = _timed(lambda: synthesize(tmp / "synth", m, seed=7))
        print(f"synth       {m} HR+LR pairs (render, express degrade, 2 PNG writes), 1 process: "
              f"{m / s_wall:8.0f} pairs/s wall ({m / s_wall / base_wall:.3f} x baseline), "
              f"{m / s_cpu:8.0f} pairs/CPU-s ({m / s_cpu / base_cpu:.3f} x); target >= 1000 pairs/s per core")


if __name__ == "__main__":
    main()
