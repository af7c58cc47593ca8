"""A released model: a training checkpoint without its optimizer, scheduler and RNG state, with provenance.

``model/lowres_ocr.pt`` is what every stage loads by default (evaluation, export, serving, the pipeline's gate);
it is written by :func:`release_checkpoint` from a run's checkpoint chosen on validation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lowres_ocr.network.model import load_checkpoint, load_model

#: Training state that a released model does not carry.
TRAINING_STATE = ("optimizer", "scheduler", "rng", "best")


def release_checkpoint(checkpoint: Path, out: Path, provenance: dict[str, Any]) -> dict[str, Any]:
    """Write ``out`` from ``checkpoint`` (weights, config, graph, charset, step, train config, validation) and
    ``provenance``; the result must load with :func:`load_model`. Returns what was written, without the weights."""
    payload = load_checkpoint(checkpoint)
    released = {k: v for k, v in payload.items() if k not in TRAINING_STATE}
    released["provenance"] = {"checkpoint": str(checkpoint), "step": payload.get("step"), **provenance}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    torch.save(released, tmp)
    load_model(tmp)  # a release that does not load is not written
    tmp.replace(out)
    return {k: v for k, v in released.items() if k not in ("model", "graph_spec")}
