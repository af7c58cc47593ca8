"""Validation accuracy of a training preset's model on the preset's own validation set (``data.val``).

Without ``--weights`` the model is the preset's starting point (step 0: e.g. the pretrained PP-OCR recognizer with an
SR branch that starts as bicubic upsampling); with it, a checkpoint of the run. Prints the trainer's validation dict.

    .venv/bin/python scripts/validate_preset.py --config aspect_zh [--weights $HOME/runs/aspect_zh/best.pt]
"""

from __future__ import annotations

import argparse

import torch

from lowres_ocr.network import build_model, load_model
from lowres_ocr.train.batches import load_eval_set
from lowres_ocr.train.config import load_config, merge_model_config
from lowres_ocr.train.validation import validate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="aspect_zh")
    ap.add_argument("--weights", help="a checkpoint of the run (default: the preset's untrained start)")
    args = ap.parse_args()
    cfg = load_config(args.config)
    torch.manual_seed(int(cfg.get("seed", 1)))
    model = load_model(args.weights)[0] if args.weights else build_model(merge_model_config(cfg["model"]))
    val = cfg["data"]["val"]
    images, labels = load_eval_set(val["path"], val["labels"], val["limit"], val["holdout_every"], model.charset)
    print(validate(model, images, labels, torch.device("cpu")))


if __name__ == "__main__":
    main()
