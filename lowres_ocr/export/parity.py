"""Parity of the ONNX model with the PyTorch model on real crops."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lowres_ocr.core.charset import ASCII
from lowres_ocr.core.decoding import decode, decode_best
from lowres_ocr.core.geometry import SQUEEZE, Geometry, lr_batch
from lowres_ocr.core.images import decode_image
from lowres_ocr.data.reader import iter_crops
from lowres_ocr.export.onnx_export import BEST_NAMES, INPUT_NAME, OUTPUT_NAMES, ort_session

PARITY_TOLERANCE = 1e-3


def load_crops(source: Path, count: int, geometry: Geometry = SQUEEZE) -> tuple[list[str], np.ndarray]:
    """The first ``count`` crops of ``source`` (``lowres_ocr.data.reader.iter_crops``) as names and network inputs."""
    names, images = [], []
    for name, data in iter_crops(Path(source)):
        images.append(decode_image(data, name))
        names.append(name)
        if len(images) == count:
            break
    return names, lr_batch(images, geometry)


@dataclass
class ParityResult:
    count: int
    max_abs_diff: float
    max_sr_diff: float
    mismatches: list[tuple[str, str, str]] = field(default_factory=list)  # (crop, torch text, onnx text)
    tolerance: float = PARITY_TOLERANCE

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.tolerance and not self.mismatches

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        lines = [
            f"parity {verdict}: {self.count} crops, max |probs diff| = {self.max_abs_diff:.2e} "
            f"(limit {self.tolerance:.0e}), max |sr diff| = {self.max_sr_diff:.2e}, "
            f"decoded strings identical: {self.count - len(self.mismatches)}/{self.count}"
        ]
        lines += [f"  {name}: torch {a!r} vs onnx {b!r}" for name, a, b in self.mismatches[:10]]
        return "\n".join(lines)


def _chunk_sizes(total: int, batch_size: int) -> list[int]:
    """Batch sizes 1, 3, then ``batch_size``: parity is checked on several sizes of the dynamic axis."""
    sizes, left = [], total
    for size in (1, 3):
        if left > 0:
            sizes.append(min(size, left))
            left -= sizes[-1]
    while left > 0:
        sizes.append(min(batch_size, left))
        left -= sizes[-1]
    return sizes


def check_parity(
    model: Any, onnx_path: Path, names: Sequence[str], lr: np.ndarray, *, batch_size: int = 50,
    tolerance: float = PARITY_TOLERANCE,
) -> ParityResult:
    """Compare PyTorch ``model.infer`` and ONNX Runtime on the same inputs ``lr`` [N,3,H,W] (``load_crops``)."""
    import torch

    session = ort_session(onnx_path)
    best_names = [n for n in BEST_NAMES if n in {o.name for o in session.get_outputs()}]
    decoder = str(getattr(model, "decoder", "ctc"))
    charset = getattr(model, "charset", ASCII)
    max_diff = max_sr = 0.0
    mismatches: list[tuple[str, str, str]] = []
    model.eval()
    bounds, start = [], 0
    for size in _chunk_sizes(len(lr), batch_size):
        bounds.append((start, start + size))
        start += size
    for start, stop in bounds:
        chunk = lr[start:stop]
        with torch.no_grad():
            t_probs, t_sr = (t.numpy() for t in model.infer(torch.from_numpy(chunk)))
        o_probs, o_sr, *o_best = session.run([*OUTPUT_NAMES, *best_names], {INPUT_NAME: chunk})
        max_diff = max(max_diff, float(np.abs(t_probs - o_probs).max()))
        max_sr = max(max_sr, float(np.abs(t_sr - o_sr).max()))
        # a graph with the best-class outputs is checked the way a server decodes it: from those outputs alone
        served = decode_best(*o_best, decoder, charset) if o_best else decode(o_probs, decoder, charset)
        for i, (a, b) in enumerate(zip(decode(t_probs, decoder, charset), served)):
            if a.text != b.text:
                mismatches.append((names[start + i], a.text, b.text))
    return ParityResult(len(lr), max_diff, max_sr, mismatches, tolerance)
