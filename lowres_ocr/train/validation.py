"""Validation during training: the model's own decoder on the SR path and on bicubic-upsampled LR."""

from __future__ import annotations

import torch
from PIL import Image

from lowres_ocr.core.charset import normalize_36
from lowres_ocr.core.decoding import decode
from lowres_ocr.core.geometry import lr_batch
from lowres_ocr.network.sr import bicubic_upsample


@torch.no_grad()
def validate(model: torch.nn.Module, images: list[Image.Image], labels: list[str], device: torch.device,
             batch_size: int = 64) -> dict[str, float]:
    """Accuracy (36-class, case-folded) of the SR path (``val_accuracy``, the one ``best.pt`` is chosen by) and of the
    same recognizer fed bicubic-upsampled LR (``val_bicubic_accuracy``, what the SR branch has to beat).

    The probabilities are decoded by ``lowres_ocr.core.decoding.decode`` with the model's decoder (CTC or attention),
    as ``lowres_ocr.network.inference.Recognizer.predict`` does.
    """
    modes = [(m, m.training) for m in model.modules()]  # restored as they were: frozen parts stay in eval mode
    model.eval()
    scale = model.geometry.sr_scale
    paths = {"val_accuracy": model.sr, "val_bicubic_accuracy": lambda lr: bicubic_upsample(lr, scale)}
    correct = dict.fromkeys(paths, 0)
    try:
        for i in range(0, len(images), batch_size):
            lr = torch.from_numpy(lr_batch(images[i:i + batch_size], model.geometry)).to(device)
            truth = [normalize_36(gt) for gt in labels[i:i + batch_size]]
            for key, upsample in paths.items():
                decoded = decode(model.recognize(upsample(lr)).float().cpu().numpy(), model.decoder, model.charset)
                correct[key] += sum(normalize_36(d.text) == t for d, t in zip(decoded, truth))
    finally:
        for module, training in modes:
            module.train(training)
    n = max(1, len(images))
    return {**{key: c / n for key, c in correct.items()}, "val_samples": float(len(images))}
