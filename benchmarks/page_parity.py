"""Served vs in-process page reading on real whole images: same lines, same boxes, same confidences.

    .venv/bin/python benchmarks/page_parity.py [--images data/ic15_e2e_test/images] [--limit 50] [--weights W]

Reads every image in process first (``PageReader``: the rapidocr wheel's detector + the PyTorch checkpoint),
then starts the local tritonserver (127.0.0.1) on a --local repository with the page endpoint made from the
checkpoint's ONNX export, and reads the same encoded files over HTTP and over gRPC (``PageClient``). Per
protocol it prints the images whose line texts are identical, the largest distance between corresponding box
corners (px) and the largest confidence difference. Exit 1 on any mismatch: different texts or line counts, a
corner further than --box-tol px (1), a confidence further than --conf-tol (5e-3), or a request refused.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _serving_common import PAGES_DIR, RELEASED, page_files, page_repository, resolve_onnx  # noqa: E402


@dataclass
class Comparison:
    image: str
    protocol: str
    same_texts: bool
    box_px: float  # largest corner distance; inf when the line counts differ
    confidence: float  # largest |confidence difference|; inf when the line counts differ
    error: str = ""

    def ok(self, box_tol: float, conf_tol: float) -> bool:
        return not self.error and self.same_texts and self.box_px <= box_tol and self.confidence <= conf_tol


def compare(image: str, protocol: str, expected: list, served: list) -> Comparison:
    """Lines of one page, in reading order: in process (``expected``) vs served (both lists of ``Region``)."""
    same = [r.text for r in expected] == [r.text for r in served]
    if len(expected) != len(served):
        return Comparison(image, protocol, same, float("inf"), float("inf"))
    if not expected:
        return Comparison(image, protocol, same, 0.0, 0.0)
    a = np.stack([np.asarray(r.points, dtype=np.float64) for r in expected])
    b = np.stack([np.asarray(r.points, dtype=np.float64) for r in served])
    conf = np.abs(np.array([r.confidence for r in expected]) - np.array([r.confidence for r in served]))
    return Comparison(image, protocol, same, float(np.linalg.norm(a - b, axis=-1).max()), float(conf.max()))


def read_in_process(weights: Path, paths: list[Path]) -> dict[str, list]:
    """Every image's lines from the in-process reader (detector + PyTorch recognizer)."""
    from lowres_ocr.page.reader import PageReader, load_page

    reader = PageReader.load(weights)
    return {p.name: reader.read(load_page(p.read_bytes(), str(p))) for p in paths}


def read_served(url: str, protocol: str, paths: list[Path], expected: dict[str, list]) -> list[Comparison]:
    """Each image sent as its encoded file to ``lowres_ocr_page``, compared with the in-process lines."""
    from tritonclient.utils import InferenceServerException

    from lowres_ocr.page.client import PageClient

    rows = []
    with PageClient(url, protocol) as client:  # type: ignore[arg-type]
        for path in paths:
            try:
                rows.append(compare(path.name, protocol, expected[path.name], client.read(path.read_bytes())))
            except InferenceServerException as err:
                rows.append(Comparison(path.name, protocol, False, float("inf"), float("inf"), str(err)[:200]))
    return rows


def summarise(rows: list[Comparison], args: argparse.Namespace) -> list[Comparison]:
    """Prints one line per protocol and each mismatch; returns the mismatches."""
    bad = [r for r in rows if not r.ok(args.box_tol, args.conf_tol)]
    for protocol in ("http", "grpc"):
        mine = [r for r in rows if r.protocol == protocol]
        print(f"{protocol:4s}: identical texts {sum(r.same_texts for r in mine)}/{len(mine)} images · "
              f"max box-corner difference {max(r.box_px for r in mine):.3f} px · "
              f"max confidence difference {max(r.confidence for r in mine):.2e}")
    for r in bad:
        print(f"MISMATCH {r.protocol} {r.image}: same texts {r.same_texts}, box {r.box_px:.3f} px, "
              f"confidence {r.confidence:.2e} {r.error}")
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, default=PAGES_DIR, help="folder of whole images")
    ap.add_argument("--limit", type=int, default=50, help="first N images by name (0 = all)")
    ap.add_argument("--weights", type=Path, default=RELEASED, help="recognizer checkpoint (served: its ONNX export)")
    ap.add_argument("--box-tol", type=float, default=1.0, help="largest allowed corner distance, px")
    ap.add_argument("--conf-tol", type=float, default=5e-3, help="largest allowed confidence difference")
    args = ap.parse_args()
    from lowres_ocr.serving.server import TritonServer

    if not args.weights.is_file():
        raise SystemExit(f"{args.weights}: checkpoint not found")
    paths = page_files(args.images, args.limit)
    expected = read_in_process(args.weights, paths)
    lines = sum(len(v) for v in expected.values())
    print(f"{len(paths)} images from {args.images}; in process: {lines} lines ({args.weights})", flush=True)
    onnx, origin = resolve_onnx(None, args.weights)
    with TritonServer(page_repository(onnx), ready_timeout=180) as server:
        rows = [row for protocol, url in (("http", server.http_url), ("grpc", server.grpc_url))
                for row in read_served(url, protocol, paths, expected)]
    print(f"served: {origin}, local tritonserver (python backends), endpoint lowres_ocr_page")
    bad = summarise(rows, args)
    print(f"FAIL: {len(bad)} mismatches" if bad else "parity: every image identical within the tolerances")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
