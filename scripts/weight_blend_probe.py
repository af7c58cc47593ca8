"""Blend a fine-tuned checkpoint's weights with the pretrained PP-OCR recognizer's, on validation crops only.

    nice -n 5 .venv/bin/python scripts/weight_blend_probe.py --weights model/lowres_ocr.pt --alphas 1 0.8 0.6 \
        --out model/experiments/weight_blend/results.json

For each ``alpha`` the model reads with weights ``alpha * fine_tuned + (1 - alpha) * pretrained`` (every float tensor
of the recognizer and head; ``lowres_ocr.export.release.blend_pretrained``), through the checkpoint's own read
path, on the held-out sets of ``scripts/read_path_probe.py``. Fine-tuning on LR crops costs the backbone some of
its reading of large clean crops; blending (weight-space ensembling, WiSE-FT) is the cheapest way to take some back.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from read_path_probe import load, run  # noqa: E402

from lowres_ocr.export.release import average_weights, blend_pretrained  # noqa: E402
from lowres_ocr.network import build_model, load_checkpoint  # noqa: E402

DEFAULT_SETS = ["data/textzoom_train2@5", "data/ic15_train@9", "build/val_zh_mixed@1", "data/iiit5k_train@4"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default="model/lowres_ocr.pt")
    ap.add_argument("--average-with", nargs="*", default=[], help="other checkpoints of the run: read the mean weights")
    ap.add_argument("--alphas", nargs="+", type=float, default=[1.0, 0.8, 0.6, 0.4, 0.0])
    ap.add_argument("--set", dest="sets", action="append")
    ap.add_argument("--limit", type=int, default=600)
    ap.add_argument("--out", type=Path, default=Path("model/experiments/weight_blend/results.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    payload = load_checkpoint(args.weights)
    if args.average_with:
        payload = average_weights(payload, [load_checkpoint(p) for p in args.average_with])
    data = {spec: load(spec, args.limit) for spec in (args.sets or DEFAULT_SETS)}
    results: dict[str, Any] = {"weights": args.weights, "alphas": {}, "command": "nice -n 5 .venv/bin/python "
                               + shlex.join(["scripts/weight_blend_probe.py", *(argv or sys.argv[1:])])}
    if args.out.is_file():
        results["alphas"] = json.loads(args.out.read_text(encoding="utf-8")).get("alphas", {})
    for alpha in args.alphas:
        blended = blend_pretrained(payload, alpha)
        model = build_model(blended["config"], graph_spec=blended.get("graph_spec"),
                            charset_symbols=blended.get("charset_symbols"))
        model.load_state_dict(blended["model"])
        model.eval()
        row = {name: run(model, images, labels, "two_step") for name, images, labels in data.values()}
        results["alphas"][str(alpha)] = row
        print(f"alpha {alpha:4.2f}  " + "  ".join(f"{n} {100 * r['accuracy']:5.1f}" for n, r in row.items())
              + f"  sum {sum(r['correct'] for r in row.values())}", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
