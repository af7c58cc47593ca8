"""Probe input geometries with the pretrained PP-OCR recognizer on validation crops (never test sets).

    nice -n 5 .venv/bin/python scripts/geometry_probe.py --set data/textzoom_train2@14 \
        --out model/experiments/geometry/results.json

For each candidate geometry, every crop goes the way the network input would go without the SR branch:
crop → ``Geometry.to_array`` (the LR input) → bicubic ×``sr_scale`` (``bicubic_upsample``, the stand-in for
SR) → bilinear to 48 px height keeping the aspect of the (padded) tensor (as ``PPOCREncoder.forward``) →
BGR [-1, 1] → the PP-OCR recognizer ONNX of the rapidocr wheel → CTC greedy over its full dictionary →
accuracy by the set's protocol (36-char, or line accuracy for Chinese sets). The ``reference`` candidate reads the crop as stored, rapidocr-style: resized to 48 px
height keeping its aspect and padded to at least 320 px (no down-sampling), one crop per run.

A set is ``PATH[:LABELS]@EVERY``: the held-out samples of ``SampleSource(..., holdout_every=EVERY,
split="val")`` (every EVERY-th usable sample, the training configs' validation split), at most ``--limit``;
pairs give their LR crop, word sets their crop. Results are merged per set into ``--out`` (so sets can be
run one at a time) and the Markdown report next to it is rewritten from everything in that file.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from lowres_ocr.core.decoding import ctc_greedy
from lowres_ocr.core.geometry import Geometry
from lowres_ocr.core.images import decode_image
from lowres_ocr.network.encoders import ppocr_charset, rapidocr_model_path
from lowres_ocr.network.sr import bicubic_upsample

REC_HEIGHT = 48
REF_MIN_WIDTH = 320  # rapidocr pads every crop to at least its 3×48×320 recognizer shape
#: Everything after this line of an existing report is kept when the report is rewritten (hand-written notes).
NOTES_MARKER = "<!-- notes: kept when the table is regenerated -->"
DEFAULT_SETS = ["data/textzoom_train2@14", "data/iiit5k_train@4", "data/ic15_train@9"]


def default_candidates() -> list[str]:
    """Squeeze 16×64 and 32×128; aspect heights 12-32 at 8:1 and 12:1, 16:1 for 16 and 24; the reference."""
    out = ["squeeze:16x64", "squeeze:32x128"]
    for h in (12, 16, 20, 24, 32):
        ratios = (8, 12, 16) if h in (16, 24) else (8, 12)
        out += [f"aspect:{h}x{h * r}" for r in ratios]
    return out + ["reference"]


def parse_candidate(text: str) -> Geometry | None:
    """``KIND:HxW`` → a Geometry (sr_scale 2); ``reference`` → None (the crop as stored)."""
    if text == "reference":
        return None
    kind, _, size = text.partition(":")
    h, _, w = size.partition("x")
    return Geometry(kind, int(h), int(w), 2)


@dataclass
class Crop:
    image: Image.Image
    label: str


def load_crops(spec: str, limit: int | None) -> tuple[str, list[Crop], dict[str, Any]]:
    """The held-out crops of ``PATH[:LABELS]@EVERY`` that the set's protocol scores (latin36, or line for CJK)."""
    from lowres_ocr.evaluation.metrics import label_filter, protocol_for
    from lowres_ocr.network.encoders import ppocr_charset
    from lowres_ocr.train.batches import SampleSource

    path_labels, every = spec.rsplit("@", 1) if "@" in spec else (spec, "1")
    path, labels = path_labels, ""
    if not Path(path_labels).exists() and ":" in path_labels:
        path, labels = path_labels.rsplit(":", 1)
    src = SampleSource(path, labels or "labels.tsv", holdout_every=int(every), split="val", charset=ppocr_charset())
    protocol = protocol_for(s.label for s in src.samples)
    chosen = [s for s in src.samples if label_filter(s.label, protocol=protocol, max_length=64) is None]
    chosen = chosen[:limit] if limit else chosen
    crops = [Crop(decode_image(s.lr if s.lr is not None else s.hr), s.label) for s in chosen]
    name = Path(path).name + (f":{Path(labels).stem}" if labels else "")
    side = "LR of pairs" if chosen and chosen[0].lr is not None else "word crops as stored"
    ratios = [c.image.size[0] / max(1, c.image.size[1]) for c in crops]
    info = {"path": path, "labels": labels or "labels.tsv", "holdout_every": int(every), "limit": limit,
            "crops": len(crops), "side": side,
            "median_aspect": round(float(np.median(ratios)), 2) if ratios else 0.0,
            "share_wider_than": {str(r): round(sum(x > r for x in ratios) / max(1, len(ratios)), 4) for r in (4, 8, 12, 16)}}
    return name, crops, info


class Recognizer:
    """The pretrained PP-OCR recognizer ONNX (softmax output over blank + its dictionary + space)."""

    def __init__(self, threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(rapidocr_model_path()), opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.charset = ppocr_charset()
        self.ort_seconds = 0.0

    def read(self, x: np.ndarray) -> list[str]:
        """BGR [-1, 1] float32 [B, 3, 48, W] → texts."""
        t0 = time.perf_counter()
        probs = self.session.run(None, {self.input: x})[0]
        self.ort_seconds += time.perf_counter() - t0
        if not np.allclose(probs[:, :1].sum(axis=2), 1.0, atol=1e-3):  # the wheel's model ends in softmax
            probs = torch.from_numpy(probs).softmax(dim=2).numpy()
        return [d.text for d in ctc_greedy(probs, charset=self.charset)]


def to_recognizer(sr: torch.Tensor) -> np.ndarray:
    """SR-resolution RGB [0, 1] [B, 3, h, w] → 48 px high (aspect kept, bilinear), BGR [-1, 1]."""
    h, w = sr.shape[2:]
    width = max(1, round(w * REC_HEIGHT / h))
    if (h, w) != (REC_HEIGHT, width):
        sr = F.interpolate(sr, size=(REC_HEIGHT, width), mode="bilinear", align_corners=False)
    return np.ascontiguousarray((sr.flip(1) * 2.0 - 1.0).numpy())


def reference_input(img: Image.Image) -> np.ndarray:
    """rapidocr-style: the crop resized to 48 px height (aspect kept), BGR [-1, 1], zero-padded to ≥ 320 px."""
    w, h = img.size
    width = max(1, math.ceil(REC_HEIGHT * w / max(1, h)))
    arr = np.asarray(img.convert("RGB").resize((width, REC_HEIGHT), Image.BILINEAR), dtype=np.float32) / 255.0
    x = np.zeros((1, 3, REC_HEIGHT, max(width, REF_MIN_WIDTH)), dtype=np.float32)
    x[0, :, :, :width] = arr[:, :, ::-1].transpose(2, 0, 1) * 2.0 - 1.0
    return x


def run_candidate(rec: Recognizer, cand: str, crops: list[Crop], batch: int) -> dict[str, Any]:
    """Accuracy, crops/s (everything: input geometry, upsample, resize, ONNX, decoding) and ONNX-only time."""
    geom = parse_candidate(cand)
    if geom is not None and crops:  # warm-up: ONNX Runtime's first run at a new input shape is slower
        first = torch.from_numpy(geom.batch([c.image for c in crops[:batch]]))
        rec.read(to_recognizer(bicubic_upsample(first, geom.sr_scale)))
    rec.ort_seconds = 0.0
    preds: list[str] = []
    t0 = time.perf_counter()
    if geom is None:
        for c in crops:
            preds += rec.read(reference_input(c.image))
    else:
        for i in range(0, len(crops), batch):
            lr = torch.from_numpy(geom.batch([c.image for c in crops[i:i + batch]]))
            preds += rec.read(to_recognizer(bicubic_upsample(lr, geom.sr_scale)))
    seconds = time.perf_counter() - t0
    from lowres_ocr.evaluation.metrics import protocol_for, score

    protocol = protocol_for(c.label for c in crops)
    correct = sum(score(c.label, p, protocol).correct for p, c in zip(preds, crops))
    return {"correct": int(correct), "crops": len(crops), "accuracy": correct / max(1, len(crops)),
            "seconds": round(seconds, 3), "ort_seconds": round(rec.ort_seconds, 3),
            "crops_per_s": round(len(crops) / max(seconds, 1e-9), 2)}


def describe(cand: str) -> str:
    """Human name of a candidate: ``aspect 24×288 (12:1)``, ``squeeze 16×64``, ``reference (crop as stored)``."""
    geom = parse_candidate(cand)
    if geom is None:
        return "reference: crop as stored → 48 px"
    rec_w = round(geom.width * REC_HEIGHT / geom.height)
    ratio = f" ({geom.width // geom.height}:1)" if geom.kind == "aspect" else ""
    return f"{geom.kind} {geom.height}×{geom.width}{ratio} → 48×{rec_w}"


def write_report(results: dict[str, Any], path: Path) -> None:
    """Markdown table: candidate × set accuracy, crop-weighted and per-set means, crops/s; the commands."""
    sets = list(results["sets"])
    cands = results["candidates"]
    head = "| candidate (LR input → recognizer input) | " + " | ".join(
        f"{s} (n={results['sets'][s]['info']['crops']})" for s in sets) + " | weighted mean | mean of sets | crops/s | ONNX crops/s |"
    lines = [head, "|" + "---|" * (len(sets) + 5)]
    summary: dict[str, dict[str, float]] = {}
    for cand in cands:
        rows = [results["sets"][s]["candidates"].get(cand) for s in sets]
        if any(r is None for r in rows):
            continue
        n = sum(r["crops"] for r in rows)
        weighted = sum(r["correct"] for r in rows) / max(1, n)
        macro = sum(r["accuracy"] for r in rows) / len(rows)
        secs = sum(r["seconds"] for r in rows)
        ort_secs = sum(r["ort_seconds"] for r in rows)
        summary[cand] = {"weighted": weighted, "macro": macro}
        cells = " | ".join(f"{100 * r['accuracy']:.1f}" for r in rows)
        lines.append(f"| {describe(cand)} | {cells} | **{100 * weighted:.1f}** | {100 * macro:.1f} | "
                     f"{n / max(secs, 1e-9):.1f} | {n / max(ort_secs, 1e-9):.1f} |")
    results["summary"] = summary
    cmds = "\n".join(f"    {c}" for c in dict.fromkeys(c for s in sets for c in results["sets"][s]["commands"]))
    set_lines = "\n".join(
        f"- `{s}`: {i['side']}, held-out split `holdout_every={i['holdout_every']}` of `{i['path']}` "
        f"(`{i['labels']}`), labels its protocol cannot score dropped, {i['crops']} crops; median width:height "
        f"{i.get('median_aspect', '?')}, wider than 4:1 / 8:1 / 12:1 / 16:1: "
        + " / ".join(f"{100 * v:.1f} %" for v in i.get("share_wider_than", {}).values())
        for s in sets for i in [results["sets"][s]["info"]])
    text = f"""# Input geometry probe: the pretrained PP-OCR recognizer under candidate LR geometries

Validation crops only (no test set was read). Per candidate: crop → `Geometry.to_array` (the LR network
input; aspect: height kept, right-padded with 0.5 to the maximum width, squeezed past it) → bicubic ×2
(`bicubic_upsample`, a stand-in for the SR branch) → bilinear to 48 px height keeping the aspect of the
padded tensor → BGR [-1, 1] → `{rapidocr_model_path().name}` (rapidocr wheel) in ONNX Runtime → CTC greedy
over the full PP-OCR dictionary → scored by the set's protocol (`normalize_36` on both sides; the line protocol for CJK sets). The reference reads the crop
as stored (rapidocr-style: 48 px height, aspect kept, padded to ≥ 320 px, one crop per run). No SR branch
and no fine-tuning: this measures what resolution and aspect the pretrained backbone needs.

Sets:
{set_lines}

Accuracy in % (36-char protocol; line accuracy for sets with Chinese labels). crops/s: end to end on this machine's CPU (input geometry, upsample,
resize, ONNX, decoding; batches of {results['batch']}, ONNX Runtime {results['threads']} threads, 2 shared
cores with other jobs running, so ±20 %); ONNX crops/s counts the ONNX Runtime time only.

{chr(10).join(lines)}

Commands (each merges its sets × candidates into `results.json` and rewrites this report):

{cmds}
"""
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    notes = old[old.index(NOTES_MARKER):] if NOTES_MARKER in old else ""
    path.write_text(text + ("\n" + notes if notes else ""), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", dest="sets", action="append",
                    help=f"PATH[:LABELS]@EVERY, repeatable (default: {' '.join(DEFAULT_SETS)})")
    ap.add_argument("--candidates", nargs="+", default=default_candidates(),
                    help="KIND:HxW (squeeze|aspect) or 'reference' (default: the issue's list)")
    ap.add_argument("--limit", type=int, default=500, help="at most this many crops per set")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    ap.add_argument("--out", type=Path, default=Path("model/experiments/geometry/results.json"))
    ap.add_argument("--report", type=Path, help="Markdown report (default: report.md next to --out)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    for cand in args.candidates:
        parse_candidate(cand)  # fail early on a malformed candidate
    rec = Recognizer(args.threads)
    results: dict[str, Any] = {"sets": {}}
    if args.out.is_file():
        results = json.loads(args.out.read_text(encoding="utf-8"))
    results.update(batch=args.batch, threads=args.threads, model=rapidocr_model_path().name)
    results["candidates"] = list(dict.fromkeys([*results.get("candidates", []), *args.candidates]))
    command = "nice -n 5 .venv/bin/python " + shlex.join(["scripts/geometry_probe.py", *(argv or sys.argv[1:])])
    for spec in args.sets or DEFAULT_SETS:
        name, crops, info = load_crops(spec, args.limit)
        entry = results["sets"].setdefault(name, {"candidates": {}})
        entry["info"] = info
        entry["commands"] = list(dict.fromkeys([*entry.get("commands", []), command]))
        for cand in args.candidates:
            res = run_candidate(rec, cand, crops, args.batch)
            entry["candidates"][cand] = res
            print(f"{name:18s} {cand:16s} acc {100 * res['accuracy']:5.1f}  {res['crops_per_s']:6.1f} crops/s", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    write_report(results, args.report or args.out.with_name("report.md"))
    args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
