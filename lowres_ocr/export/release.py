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
#: What a snapshot leaves out: the optimizer's moments (two thirds of a checkpoint); a run that continues from the
#: snapshot (config ``resume_from``) keeps its step, schedule, RNG and data position.
SNAPSHOT_DROPS = ("optimizer",)


def release_checkpoint(checkpoint: Path, out: Path, provenance: dict[str, Any], snapshot: bool = False) -> dict[str, Any]:
    """Write ``out`` from ``checkpoint`` (weights, config, graph, charset, step, train config, validation) and
    ``provenance``; the result must load with :func:`load_model`. Returns what was written, without the weights.
    ``snapshot`` keeps the training state but the optimizer's moments."""
    payload = load_checkpoint(checkpoint)
    if snapshot and "scheduler" not in payload:
        raise ValueError(f"{checkpoint} holds no training state (step, scheduler): a snapshot needs a run's checkpoint")
    drops = SNAPSHOT_DROPS if snapshot else TRAINING_STATE
    released = {k: v for k, v in payload.items() if k not in drops}
    released["provenance"] = {"checkpoint": str(checkpoint), "step": payload.get("step"), **provenance}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    torch.save(released, tmp)
    load_model(tmp)  # a release that does not load is not written
    tmp.replace(out)
    return {k: v for k, v in released.items() if k not in ("model", "graph_spec")}
