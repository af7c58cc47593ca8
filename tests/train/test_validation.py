"""Validation during training reads the model with its own decoder (the one prediction path)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from lowres_ocr.core.charset import encode, normalize_36
from lowres_ocr.core.decoding import ctc_greedy
from lowres_ocr.core.geometry import lr_batch
from lowres_ocr.network import build_model, tiny_config
from lowres_ocr.network.inference import Recognizer
from lowres_ocr.train.validation import validate


def _attention_model_reading(char: str) -> torch.nn.Module:
    """A tiny attention-decoder model whose every step emits ``char`` (never end-of-sequence)."""
    model = build_model({**tiny_config(), "decoder": "attention"})
    with torch.no_grad():
        model.head.out.weight.zero_()
        model.head.out.bias.fill_(-10.0)
        model.head.out.bias[encode(char)[0]] = 10.0
    return model


def test_validation_uses_the_attention_decoder():
    """CTC-greedy on attention output merges the repeated steps into one character; the attention decoder reads
    every step up to end-of-sequence. Validation (and so the ``best.pt`` choice) must count the attention reading."""
    model = _attention_model_reading("a")
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (16, 64, 3), dtype=np.uint8)) for _ in range(3)]
    reading = Recognizer(_attention_model_reading("a")).predict(images)  # the served reading: "a" at every step
    lr = torch.from_numpy(lr_batch(images))
    with torch.no_grad():
        greedy = ctc_greedy(model.eval().recognize(model.sr(lr)).numpy())
    labels = [d.text for d in reading]
    assert labels[0] == "a" * (model.head.max_len + 1)
    assert all(normalize_36(g.text) != normalize_36(t) for g, t in zip(greedy, labels))  # the two decodings differ
    model.train()
    metrics = validate(model, images, labels, torch.device("cpu"))
    assert metrics["val_accuracy"] == 1.0
    assert metrics["val_bicubic_accuracy"] == 1.0  # the same constant reading on the bicubic path
    assert model.training  # put back in train mode
