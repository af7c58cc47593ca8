"""ONNX Runtime CPU speed of the exported model next to rapidocr's recognizer, on the same real crops.

    .venv/bin/python benchmarks/bench_onnx_vs_rapidocr.py [--onnx M | --weights W] [--threads 0] [--repeat 3]

Both sides do the whole per-crop work from encoded bytes to text: decode + resize + normalize, ONNX
Runtime, CTC greedy decoding. Ours: ``image_bytes_to_input`` (the model's input geometry) → exported model (SR + recognizer)
→ ``lowres_ocr.core.decoding.decode``. rapidocr: PIL decode → BGR array → its ``TextRecognizer`` (PP-OCRv6 small rec, 48×W
input, its own preprocessing and decoding). Measured at batch 1 (crop by crop) and batch 32, same ORT
thread count, best of ``--repeat`` passes; prints crops/s, the ratio ours/rapidocr, and word accuracy
(36-char protocol) of both on the crops for context.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _serving_common import InProcessReader, default_crops_dir, rapidocr_reader, resolve_onnx  # noqa: E402


def labelled_crops(source: Path, count: int) -> list[tuple[bytes, str]]:
    """(encoded bytes, label) from a dataset folder (labels.tsv) or a folder of dataset folders."""
    folders = [source] if (source / "labels.tsv").is_file() else sorted(p for p in source.iterdir() if (p / "labels.tsv").is_file())
    rows: list[list[tuple[bytes, str]]] = []
    for folder in folders:
        items = []
        for line in (folder / "labels.tsv").read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if len(parts) >= 2:
                items.append(((folder / parts[-2]).read_bytes(), parts[-1]))
        rows.append(items)
    mixed = [x for group in zip(*rows) for x in group] if len(rows) > 1 else rows[0]
    return mixed[:count]


def best_rate(fn: Callable[[list[bytes]], list[str]], crops: list[bytes], batch: int, repeat: int) -> tuple[float, list[str]]:
    best, texts = 0.0, []
    for _ in range(repeat):
        start = time.perf_counter()
        texts = [t for i in range(0, len(crops), batch) for t in fn(crops[i : i + batch])]
        best = max(best, len(crops) / (time.perf_counter() - start))
    return best, texts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx", type=Path)
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--threads", type=int, default=0, help="ORT intra-op threads for both (0 = ORT default)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from lowres_ocr.core.charset import normalize_36

    onnx, origin = resolve_onnx(args.onnx, args.weights)
    source = args.data or default_crops_dir()
    items = labelled_crops(source, args.count)
    crops, labels = [b for b, _ in items], [lab for _, lab in items]
    print(f"model: {origin}\ncrops: {len(crops)} from {source}; ORT threads: {args.threads or 'default'}")

    def accuracy(texts: list[str]) -> float:
        return float(np.mean([normalize_36(t) == normalize_36(lab) for t, lab in zip(texts, labels)]))

    print("\n| batch | lowres-ocr ONNX crops/s | rapidocr rec crops/s | ratio ours/rapidocr | word acc ours | word acc rapidocr |")
    print("|---|---|---|---|---|---|")
    for batch in (1, 32):
        ours_fn, theirs_fn = InProcessReader(onnx, args.threads), rapidocr_reader(args.threads, batch)
        ours_fn(crops[:2]), theirs_fn(crops[:2])  # warm-up
        r_ours, t_ours = best_rate(ours_fn, crops, batch, args.repeat)
        r_theirs, t_theirs = best_rate(theirs_fn, crops, batch, args.repeat)
        print(f"| {batch} | {r_ours:.1f} | {r_theirs:.1f} | {r_ours / r_theirs:.2f} | {accuracy(t_ours):.3f} | {accuracy(t_theirs):.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
