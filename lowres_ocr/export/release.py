"""A released model: a training checkpoint without its optimizer, scheduler and RNG state, with provenance.

``model/lowres_ocr.pt`` is what every stage loads by default (evaluation, export, serving, the pipeline's gate);
it is written by :func:`release_checkpoint` from a run's checkpoint chosen on validation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lowres_ocr.core.geometry import Geometry
from lowres_ocr.network.model import load_checkpoint, load_model

#: Training state that a released model does not carry.
TRAINING_STATE = ("optimizer", "scheduler", "rng", "best")
#: What a snapshot leaves out: the optimizer's moments (two thirds of a checkpoint); a run that continues from the
#: snapshot (config ``resume_from``) keeps its step, schedule, RNG and data position.
SNAPSHOT_DROPS = ("optimizer",)


def direct_read(payload: dict[str, Any], width: int | None = None) -> dict[str, Any]:
    """The same model reading each crop straight at its recognizer's resolution: no SR branch, ``sr_scale`` 1.

    Only for a model whose SR branch adds nothing (``residual_scale`` 0, its image the bicubic ×``sr_scale`` of the
    LR input): the recognizer, head and charset are kept; the input geometry becomes the scaled one (an aspect
    24×192 ×2 model reads 48×384), so a crop taller than the LR height is no longer shrunk to it first.
    ``width`` sets another maximum (padded) width at that height, e.g. 320 (rapidocr's minimum recognizer width).
    """
    config = dict(payload["config"])
    sr = config.get("sr") or {}
    if sr.get("kind") == "none":
        raise ValueError("the model reads directly already (sr.kind none)")
    if float(sr.get("residual_scale", 1.0)) != 0.0:
        raise ValueError(f"the model's SR branch is trained (residual_scale {sr.get('residual_scale', 1.0)}): "
                         "dropping it would change what the recognizer reads; only a residual_scale-0 branch can go")
    geometry = Geometry.from_config(config.get("geometry")).scaled()
    if width is not None:
        geometry = Geometry(geometry.kind, geometry.height, width, 1)
    config["sr"] = {"kind": "none"}
    config["geometry"] = geometry.to_config()
    weights = {k: v for k, v in payload["model"].items() if not k.startswith("sr.")}
    return {**payload, "config": config, "model": weights}


def blend_pretrained(payload: dict[str, Any], alpha: float) -> dict[str, Any]:
    """The checkpoint with recognizer and head weights ``alpha * its own + (1 - alpha) * pretrained``.

    Pretrained: the PP-OCR recognizer of the rapidocr wheel that a ``recognizer: {type: ppocr, init: rapidocr}``
    model starts from, with the same charset and geometry (so every tensor lines up). Weight-space ensembling of a
    fine-tuned model and its start (WiSE-FT) keeps part of what fine-tuning on LR crops cost on clean ones.
    """
    from lowres_ocr.network.model import build_model

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"blend alpha must lie in [0, 1], got {alpha}")
    config = payload["config"]
    rec = config.get("recognizer", {})
    if rec.get("type") != "ppocr" or rec.get("init") != "rapidocr":
        raise ValueError("blending needs a ppocr recognizer started from the rapidocr wheel (recognizer.init: rapidocr)")
    pretrained = build_model(config).state_dict()
    weights = {}
    for key, value in payload["model"].items():
        start = pretrained.get(key)
        if (key.startswith(("encoder.", "head.")) and start is not None and value.is_floating_point()
                and start.shape == value.shape):
            weights[key] = alpha * value + (1.0 - alpha) * start.to(value.dtype)
        else:
            weights[key] = value
    return {**payload, "model": weights}


def average_weights(payload: dict[str, Any], others: list[dict[str, Any]]) -> dict[str, Any]:
    """``payload`` with every float tensor the mean of its own and the same tensor of ``others`` (checkpoints of one
    run: the same architecture and charset). Averaging checkpoints along a run (as SWA does) smooths the step-to-step
    noise of a small-batch fine-tune; integer tensors (BatchNorm counters) are ``payload``'s."""
    for k, other in enumerate(others):
        if other.get("charset_symbols") != payload.get("charset_symbols") or other["config"] != payload["config"]:
            raise ValueError(f"checkpoint {k + 2} of the average has another architecture or charset")
    weights = {}
    for key, value in payload["model"].items():
        tensors = [value]
        for k, other in enumerate(others):
            theirs = other["model"].get(key)
            if theirs is None or theirs.shape != value.shape:
                raise ValueError(f"checkpoint {k + 2} of the average has no tensor {key} of shape {tuple(value.shape)}")
            tensors.append(theirs)
        weights[key] = torch.stack([t.to(value.dtype) for t in tensors]).mean(0) if value.is_floating_point() else value
    return {**payload, "model": weights}


def release_checkpoint(checkpoint: Path, out: Path, provenance: dict[str, Any], snapshot: bool = False,
                       direct: bool = False, direct_width: int | None = None,
                       blend: float | None = None, average_with: list[Path] | None = None) -> dict[str, Any]:
    """Write ``out`` from ``checkpoint`` (weights, config, graph, charset, step, train config, validation) and
    ``provenance``; the result must load with :func:`load_model`. Returns what was written, without the weights.
    ``snapshot`` keeps the training state but the optimizer's moments; ``direct`` releases :func:`direct_read`;
    ``average_with`` releases :func:`average_weights` of the checkpoint and those; ``blend`` then releases
    :func:`blend_pretrained` with that alpha."""
    payload = load_checkpoint(checkpoint)
    if direct_width is not None and not direct:
        raise ValueError("a read width applies to a direct-read release only (direct)")
    if (direct or blend is not None or average_with) and snapshot:
        raise ValueError("a snapshot continues training as it was: it cannot also change the read path or the weights")
    if average_with:
        payload = average_weights(payload, [load_checkpoint(p) for p in average_with])
    if blend is not None:
        payload = blend_pretrained(payload, blend)
    if direct:
        payload = direct_read(payload, direct_width)
    if snapshot and "scheduler" not in payload:
        raise ValueError(f"{checkpoint} holds no training state (step, scheduler): a snapshot needs a run's checkpoint")
    drops = SNAPSHOT_DROPS if snapshot else TRAINING_STATE
    released = {k: v for k, v in payload.items() if k not in drops}
    released["provenance"] = {"checkpoint": str(checkpoint), "step": payload.get("step"), **provenance}
    if average_with:
        released["provenance"]["averaged_with"] = [str(p) for p in average_with]
    if blend is not None:
        what = f"the mean of {1 + len(average_with)} checkpoints" if average_with else "the checkpoint"
        released["provenance"]["weights"] = f"blended: {blend} x {what} + {1 - blend:.2f} x the pretrained PP-OCR recognizer"
    if direct:
        g = Geometry.from_config(payload["config"]["geometry"])
        released["provenance"]["read_path"] = (f"direct: SR branch (residual_scale 0) dropped, crops read at "
                                               f"{g.height} px high, padded to {g.width} px ({g.kind})")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    torch.save(released, tmp)
    load_model(tmp)  # a release that does not load is not written
    tmp.replace(out)
    return {k: v for k, v in released.items() if k not in ("model", "graph_spec")}
