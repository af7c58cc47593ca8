"""Data-stage throughput: LMDB build (images/s) and LR/HR synthesis (pairs/s per core).

Each number is printed with its ratio to a baseline measured in the same process just before: decoding the
same 32x128 PNGs from memory with PIL (the work a build cannot avoid: every image is fully decoded to find
corrupt files). Wall time and process CPU time are both reported; on a machine shared with other jobs the
CPU-time rate is the per-core figure.

    .venv/bin/python benchmarks/bench_data.py [--rounds 5] [--build-images 1000] [--synth-pairs 600]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
from PIL import Image

from lowres_ocr.data.build import build_lmdb
from lowres_ocr.data.lmdb_io import LmdbReader
from lowres_ocr.data.synth import _png, make_pair, synthesize


def _timed(fn) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def _decode_all(blobs: list[bytes]) -> None:
    for b in blobs:
        with Image.open(io.BytesIO(b)) as im:
            im.load()


def _rounds(label: str, unit: str, rounds: int, baseline, work, per_round: int, base_n: int, target: str) -> None:
    """Alternate baseline and work ``rounds`` times (the load of a shared machine drifts); print medians."""
    rates, cpu_rates, ratios, cpu_ratios = [], [], [], []
    for r in range(rounds):
        bw, bc = _timed(baseline)
        ww, wc = _timed(lambda: work(r))
        rates.append(per_round / ww)
        cpu_rates.append(per_round / wc)
        ratios.append((per_round / ww) / (base_n / bw))
        cpu_ratios.append((per_round / wc) / (base_n / bc))
    med = statistics.median
    print(f"{label}: {med(rates):7.0f} {unit}/s wall, {med(cpu_rates):7.0f} {unit}/CPU-s; ratio to the decode baseline "
          f"{med(ratios):.3f} wall, {med(cpu_ratios):.3f} CPU (median of {rounds} alternating rounds, wall ratios "
          f"{min(ratios):.3f}-{max(ratios):.3f}); target {target}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--build-images", type=int, default=1000, help="images per build round")
    ap.add_argument("--synth-pairs", type=int, default=600, help="pairs per synthesis round")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (other jobs share the cores)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # N distinct 32x128 PNG word crops, as the synthesizer writes them
        n = args.build_images
        synthesize(tmp / "src", n, seed=123)
        blobs = [p.read_bytes() for p in sorted((tmp / "src" / "hr").glob("*.png"))]
        _decode_all(blobs[:200])  # warm up
        dec_wall, dec_cpu = _timed(lambda: _decode_all(blobs))
        print(f"baseline: PIL decode of {n} 32x128 PNGs from memory, {n / dec_wall:.0f} images/s wall, "
              f"{n / dec_cpu:.0f} images/CPU-s (first round)")

        words = tmp / "words"
        (words / "hr").mkdir(parents=True)
        for i, b in enumerate(blobs):
            (words / "hr" / f"{i}.png").write_bytes(b)
        (words / "labels.tsv").write_text("".join(f"hr/{i}.png\tw{i}\n" for i in range(n)), encoding="utf-8")

        def build(r: int) -> None:
            report = build_lmdb([words], tmp / f"lmdb{r}")
            assert report.kept == n == len(LmdbReader(tmp / f"lmdb{r}"))

        _rounds(f"build-lmdb ({n} PNGs folder -> ASTER LMDB, 1 process)", "images", args.rounds,
                lambda: _decode_all(blobs), build, n, n, ">= 3000 images/s")
        synthesize(tmp / "warm", 2000, seed=99)  # fills the glyph cache, as any long run does
        m = args.synth_pairs
        _rounds(f"synth ({m} HR+LR pairs: render, express degrade, 2 PNG files; 1 process)", "pairs", args.rounds,
                lambda: _decode_all(blobs), lambda r: synthesize(tmp / f"synth{r}", m, seed=7 + r), m, n,
                ">= 1000 pairs/s per core")

        def in_memory(r: int) -> None:  # the same work without the file system: render, degrade, encode
            for i in range(m):
                _, hr, lr = make_pair(1000 + r, i)
                _png(hr), _png(lr)

        _rounds(f"synth in memory ({m} pairs, no files written; 1 process)", "pairs", args.rounds,
                lambda: _decode_all(blobs), in_memory, m, n, ">= 1000 pairs/s per core")


if __name__ == "__main__":
    main()
