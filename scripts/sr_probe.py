"""Quick probe of an SR-branch recipe: one process, recognizer frozen, SR vs bicubic on held-out TextZoom train2.

    .venv/bin/python scripts/sr_probe.py --steps 200 --lr 1e-3 --rec 1 --sr 0 --feature 0 --val-every 100

Trains only a fresh SR branch (the ``sr_stage`` config's: 64 channels, 5 blocks, 3x3 tail, residual scale 0.1
unless ``--residual-scale``) in front of the frozen recognizer of ``--weights``, on the data of the ``sr_stage``
config (batches of 16, seed 1), with the loss
``rec * CTC(SR path) + sr * pixel/gradient(SR, HR) + feature * MSE(encoder(SR), encoder(HR))``, and prints the
validation accuracy of the SR path and of the same recognizer fed bicubic LR. A probe, not a training run: no
checkpoints or resume (use ``lowres_ocr.train --config sr_stage`` for that).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from lowres_ocr.train.trainer import build_sources, frozen_modules, initialise_from, load_config, lr_lambda, set_train_mode, validate
from lowres_ocr.train.batches import StepBatches, load_eval_set


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default="model/lowres_ocr.pt")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--rec", type=float, default=1.0, help="weight of CTC through the frozen recognizer")
    ap.add_argument("--sr", type=float, default=0.0, help="weight of the SR pixel + gradient loss")
    ap.add_argument("--feature", type=float, default=0.0, help="weight of MSE between SR-path and HR encoder features")
    ap.add_argument("--residual-scale", type=float, help="SR branch residual scale (see SRBranch; default: sr_stage's)")
    ap.add_argument("--val-every", type=int, default=100)
    args = ap.parse_args()
    torch.manual_seed(1)
    stage = load_config("sr_stage")
    wide_sr = dict(stage["model_changes"]["sr"])
    if args.residual_scale is not None:
        wide_sr["residual_scale"] = args.residual_scale
    model, _ = initialise_from(Path(args.weights), {"sr": wide_sr})
    frozen = frozen_modules(model, ["recognizer", "projection"])
    for module in frozen:
        module.requires_grad_(False)
    set_train_mode(model, frozen)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(args.warmup, args.steps))
    sources, mix = build_sources(stage["data"]["train"], Path("."))
    batches = StepBatches(sources, mix, 16, 1, 0, 1, args.steps)
    val = load_eval_set(Path("data/textzoom_train2"), "labels.tsv", 400, 14)
    weights = {"rec": args.rec, "sr": args.sr, "feature": args.feature, "contrastive": 0.0}  # LowResOCR.training_losses
    t0 = time.time()
    for step in range(args.steps):
        b = batches[step]
        parts = model.training_losses(b["lr"], b["hr"], b["targets"], b["target_lengths"], weights)
        total = parts.pop("total")
        opt.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        if (step + 1) % 50 == 0:
            print(step + 1, f"{time.time() - t0:.0f}s", {k: round(float(v.detach()), 3) for k, v in parts.items()}, flush=True)
        if (step + 1) % args.val_every == 0 or step + 1 == args.steps:
            print("val", step + 1, validate(model, *val, torch.device("cpu")), flush=True)


if __name__ == "__main__":
    main()
