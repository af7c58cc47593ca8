"""Probe how a trained checkpoint should bring a crop to its recognizer's 48 px, on validation crops only.

    nice -n 5 .venv/bin/python scripts/read_path_probe.py --weights model/lowres_ocr.pt \
        --out model/experiments/read_path/results.json

Paths (the recognizer, its head and decoding are the model's own; only the image it reads differs):

- ``two_step``: ``Geometry.to_array`` at the model's LR geometry (24 px) → the model's SR branch (×2) → 48 px;
- ``direct``: the crop resized (bicubic, aspect kept) straight to the recognizer's 48 px, padded to its width;
- ``hybrid``: ``two_step`` for crops no taller than the LR height, ``direct`` for taller ones;
- ``bucketN``: ``direct``, each crop padded only to the next multiple of N px (one crop per run);
- ``direct320``: ``direct`` with the width capped and padded at 320 px.

Sets are ``PATH[:LABELS]@EVERY[/side]`` as in ``scripts/geometry_probe.py`` (held-out split); ``/hr`` reads
the HR crop of pairs instead of the LR one.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from lowres_ocr.core.decoding import decode
from lowres_ocr.core.geometry import Geometry
from lowres_ocr.evaluation.metrics import protocol_for, score
from lowres_ocr.network import load_model

PATHS = ("two_step", "direct", "hybrid", "bucket96", "bucket128", "bucket192", "direct320")
DEFAULT_SETS = ["data/textzoom_train2@5", "data/ic15_train@9", "data/iiit5k_train@4", "data/textzoom_train2@5/hr",
                "build/val_zh_mixed@1", "build/val_zh_mixed@1/hr"]


def load(spec: str, limit: int | None) -> tuple[str, list[Image.Image], list[str]]:
    sys.path.insert(0, str(Path(__file__).parent))
    from geometry_probe import load_crops  # noqa: E402  (the probe's held-out loader)
    from lowres_ocr.core.images import decode_image
    from lowres_ocr.train.batches import SampleSource

    base, _, side = spec.partition("/hr") if spec.endswith("/hr") else (spec, "", "")
    if not spec.endswith("/hr"):
        name, crops, _ = load_crops(base, limit)
        return name, [c.image for c in crops], [c.label for c in crops]
    path, every = base.rsplit("@", 1)
    from lowres_ocr.network.encoders import ppocr_charset

    src = SampleSource(path, "labels.tsv", holdout_every=int(every), split="val", charset=ppocr_charset())
    samples = src.samples[:limit] if limit else src.samples
    return Path(path).name + "/hr", [decode_image(s.hr) for s in samples], [s.label for s in samples]


@torch.inference_mode()
def recognizer_inputs(model, images: list[Image.Image], path: str) -> torch.Tensor:
    geom: Geometry = model.geometry
    rec = geom.scaled()
    two_step = model.sr(torch.from_numpy(geom.batch(images)))
    if path == "two_step":
        return two_step
    if path == "direct320":  # the recognizer's width capped at 320 px (rapidocr's minimum) instead of ×sr_scale
        return torch.from_numpy(Geometry(rec.kind, rec.height, 320, 1).batch(images))
    direct = torch.from_numpy(rec.batch(images))
    if path == "direct":
        return direct
    if path.startswith("bucket"):
        return bucketed(rec, images, int(path[len("bucket"):]))
    small = torch.tensor([im.size[1] <= geom.height for im in images]).view(-1, 1, 1, 1)
    return torch.where(small, two_step, direct)


def bucketed(rec: Geometry, images: list[Image.Image], step: int) -> list[torch.Tensor]:
    """Each crop padded only to the next multiple of ``step`` px (at most the geometry's width), one tensor per crop."""
    out = []
    for im in images:
        w = rec.content_width(im.size)
        width = min(rec.width, -(-w // step) * step)
        out.append(torch.from_numpy(Geometry(rec.kind, rec.height, width, 1).to_array(im))[None])
    return out


@torch.inference_mode()
def run(model, images: list[Image.Image], labels: list[str], path: str, batch: int = 32) -> dict[str, Any]:
    preds: list[str] = []
    for i in range(0, len(images), batch):
        x = recognizer_inputs(model, images[i:i + batch], path)
        for xi in (x if isinstance(x, list) else [x]):
            probs = model.recognize(xi).numpy()
            preds += [d.text for d in decode(probs, model.decoder, model.charset)]
    protocol = protocol_for(labels)
    scores = [score(gt, p, protocol) for gt, p in zip(labels, preds)]
    correct = sum(s.correct for s in scores)
    taller = sum(im.size[1] > model.geometry.height for im in images)
    return {"correct": int(correct), "crops": len(images), "accuracy": correct / max(1, len(images)),
            "one_minus_ned": float(np.mean([s.one_minus_ned for s in scores])) if scores else 0.0,
            "taller_than_lr": int(taller), "protocol": protocol}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default="model/lowres_ocr.pt")
    ap.add_argument("--set", dest="sets", action="append")
    ap.add_argument("--limit", type=int, default=600)
    ap.add_argument("--paths", nargs="+", default=list(PATHS), choices=PATHS)
    ap.add_argument("--out", type=Path, default=Path("model/experiments/read_path/results.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    model, _ = load_model(args.weights, "cpu")
    model.eval()
    results: dict[str, Any] = {"weights": args.weights, "sets": {},
                               "command": "nice -n 5 .venv/bin/python " + shlex.join(["scripts/read_path_probe.py", *(argv or sys.argv[1:])])}
    for spec in args.sets or DEFAULT_SETS:
        name, images, labels = load(spec, args.limit)
        results["sets"][name] = row = {p: run(model, images, labels, p) for p in args.paths}
        print(f"{name:22s} n={len(images):4d} taller={row[args.paths[0]]['taller_than_lr']:4d} "
              + "  ".join(f"{p} {100 * row[p]['accuracy']:5.1f}" for p in args.paths), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
