"""The multi-task network: SR branch → (rectifier) → recognition encoder → CTC classifier.

Training also runs the HR image through the same encoder; a contrastive term pulls the pooled
features of the SR path toward those of the matching HR image. Inference (``infer``) uses only the
LR → SR → recognizer path and has no data-dependent Python control flow, so it exports to one ONNX graph.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lowres_ocr.core.charset import ASCII, Charset
from lowres_ocr.core.geometry import Geometry
from lowres_ocr.network.attention import AttentionDecoder, attention_targets
from lowres_ocr.network.encoders import PPOCREncoder, ResNetEncoder, model_charset
from lowres_ocr.network.losses import attention_loss, ctc_loss, distillation_loss, info_nce, sr_loss
from lowres_ocr.network.rectifier import TPSRectifier
from lowres_ocr.network.sr import build_sr

DEFAULT_MODEL: dict[str, Any] = {
    "sr": {"channels": 32, "blocks": 3, "sequence": True},
    "rectifier": False,
    "recognizer": {"type": "ppocr", "width": 192, "init": "rapidocr"},
    "decoder": "ctc",
    "contrastive_dim": 128,
}

DEFAULT_LOSS_WEIGHTS: dict[str, float] = {"rec": 1.0, "rec_hr": 0.0, "sr": 1.0, "sr_gradient": 1.0, "contrastive": 0.1, "feature": 0.0,
                                          "distill": 0.0}
SR_PATH_LOSSES = ("rec", "feature", "contrastive", "distill")  # the loss parts that run the recognizer on the SR output
RECOGNIZER_LOSSES = (*SR_PATH_LOSSES, "rec_hr")  # the loss parts that run the recognizer at all


def merge(base: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    """Recursive dict merge (``override`` wins) without touching either input."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def tiny_config() -> dict[str, Any]:
    """A small randomly initialised model (≈0.3 M parameters) for tests: no downloads, fast on CPU."""
    return {
        "sr": {"channels": 16, "blocks": 1, "sequence": True},
        "rectifier": False,
        "recognizer": {"type": "resnet", "widths": [16, 32, 48, 64], "hidden": 64},
        "contrastive_dim": 32,
    }


class LowResOCR(nn.Module):
    """``head`` is a linear CTC classifier (``decoder: ctc``) or an :class:`AttentionDecoder` (``decoder: attention``)."""

    def __init__(self, config: dict[str, Any], encoder: nn.Module, head: nn.Module, charset: Charset = ASCII):
        super().__init__()
        self.config = config
        self.charset = charset
        self.sr = build_sr(config["sr"], self.geometry.sr_scale)
        self.rectifier = TPSRectifier() if config.get("rectifier") else nn.Identity()
        self.encoder = encoder
        self.head = head
        dim = encoder.feature_dim
        self.projection = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(True), nn.Linear(dim, config["contrastive_dim"]))

    # -- inference --------------------------------------------------------------------------------
    def features(self, image32x128: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.rectifier(image32x128))

    @property
    def geometry(self) -> Geometry:
        """The input geometry this model reads (config ``geometry``; none: squeeze 16×64)."""
        return Geometry.from_config(self.config.get("geometry"))

    @property
    def decoder(self) -> str:
        return self.config.get("decoder", "ctc")

    def recognize(self, image32x128: torch.Tensor) -> torch.Tensor:
        """Class probabilities [B, T, C] for a 32×128 image (HR crop, SR output or bicubic LR)."""
        feats = self.features(image32x128)
        if self.decoder == "attention":
            return self.head.greedy(feats)
        return self.head(feats).softmax(-1)

    def recognition_loss(self, feats: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
        if self.decoder == "attention":
            padded = attention_targets(targets, target_lengths).to(feats.device)
            return attention_loss(self.head(feats, padded), padded)
        return ctc_loss(self.head(feats), targets, target_lengths)

    def infer(self, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The deployed path: ``lr`` [B,3,H,W] in [0,1] (``geometry``) → (probs [B,T,classes], sr [B,3,2H,2W])."""
        sr = self.sr(lr)
        return self.recognize(sr), sr

    # -- training ---------------------------------------------------------------------------------
    def forward(self, lr, hr, targets, target_lengths, weights, teacher_probs=None):  # DDP hooks only run through forward
        return self.training_losses(lr, hr, targets, target_lengths, weights, teacher_probs)

    def training_losses(self, lr: torch.Tensor, hr: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor,
                        weights: dict[str, float], teacher_probs: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Every loss part and their weighted ``total`` for a batch of LR/HR pairs with labels.

        ``teacher_probs`` [B, T, C]: a frozen recognizer's CTC posteriors on the HR crops, the target of ``distill``.
        """
        sr = self.sr(lr)
        parts: dict[str, torch.Tensor] = {"sr": sr_loss(sr, hr, weights.get("sr_gradient", 1.0))}
        # with none of them weighted (SR pre-training) the recognizer is not run at all
        if any(weights.get(k, 0) for k in RECOGNIZER_LOSSES):
            parts.update(self._recognizer_losses(sr, hr, targets, target_lengths, weights, teacher_probs))
        parts["total"] = sum(float(weights.get(k, 0.0)) * v for k, v in parts.items())
        return parts

    def _recognizer_losses(self, sr: torch.Tensor, hr: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor,
                           weights: dict[str, float], teacher_probs: torch.Tensor | None) -> dict[str, torch.Tensor]:
        parts: dict[str, torch.Tensor] = {}
        # the SR path through the recognizer only when a weighted part uses it: HR-only recognizer training
        # (``rec_hr`` alone, the TextZoom protocol's recognizer) skips its forward and backward pass
        if any(weights.get(k, 0) for k in SR_PATH_LOSSES):
            f_sr = self.features(sr)
            parts["rec"] = self.recognition_loss(f_sr, targets, target_lengths)
        if weights.get("distill", 0):
            if teacher_probs is None or self.decoder != "ctc":
                raise ValueError("loss_weights.distill needs a CTC model and the teacher's posteriors (teacher_probs)")
            parts["distill"] = distillation_loss(self.head(f_sr), teacher_probs)
        # on CPU budgets InfoNCE uses the first ``contrastive_subset`` pairs (still subset-1 negatives each)
        n = int(weights.get("contrastive_subset", 0)) or hr.shape[0]
        if weights.get("rec_hr", 0):
            f_hr = self.features(hr)
            parts["rec_hr"] = self.recognition_loss(f_hr, targets, target_lengths)
        elif weights.get("feature", 0) or weights.get("contrastive", 0):
            # HR features are only the (fixed) target here: skip their backward pass; the feature loss needs all
            with torch.no_grad():
                f_hr = self.features(hr if weights.get("feature", 0) else hr[:n])
        if weights.get("feature", 0):  # LR-path features pulled onto the HR features, position by position
            parts["feature"] = F.mse_loss(f_sr, f_hr.detach())
        if weights.get("contrastive", 0):
            f_hr = f_hr[:n]
            parts["contrastive"] = info_nce(self.projection(f_sr[:n].mean(1)), self.projection(f_hr.mean(1)).detach())
        return parts


def build_model(config: dict[str, Any] | None = None, graph_spec: dict[str, Any] | None = None,
                charset_symbols: str | None = None) -> LowResOCR:
    """Build the network from a model config (merged over DEFAULT_MODEL).

    ``graph_spec`` and ``charset_symbols`` (stored in checkpoints) rebuild a PP-OCR encoder and its charset
    without the rapidocr package; without them, ``recognizer.init: rapidocr`` loads the pretrained weights and
    dictionary from the installed wheel. ``charset`` (``ascii`` or ``ppocr``) sets the head's classes and
    ``geometry`` (``lowres_ocr.core.geometry.Geometry``) the input the network reads.
    """
    cfg = merge(DEFAULT_MODEL, config) if config is None or "sr" not in config else copy.deepcopy(config)
    decoder = cfg.setdefault("decoder", "ctc")
    if decoder not in ("ctc", "attention"):
        raise ValueError(f"unknown decoder {decoder!r} (expected 'ctc' or 'attention')")
    charset = model_charset(cfg.get("charset", "ascii"), charset_symbols)
    encoder, head = _recognizer(cfg, graph_spec, charset)
    if decoder == "attention":  # the pretrained CTC classifier does not apply; a fresh attention decoder does
        head = AttentionDecoder(encoder.feature_dim, num_classes=charset.num_classes, **cfg.get("attention", {}))
    return LowResOCR(cfg, encoder, head, charset)


def _recognizer(cfg: dict[str, Any], graph_spec: dict[str, Any] | None, charset: Charset) -> tuple[nn.Module, nn.Module]:
    """Encoder and CTC head; a PP-OCR encoder reads at 48 px height, as wide as the geometry's aspect asks."""
    rec = cfg["recognizer"]
    if rec["type"] == "ppocr":
        width = rec.get("width", 192)
        if "geometry" in cfg:
            geometry = Geometry.from_config(cfg["geometry"])
            width = round(geometry.width * 48 / geometry.height)
        if graph_spec is not None:
            encoder = PPOCREncoder(graph_spec, width)
            return encoder, nn.Linear(encoder.feature_dim, charset.num_classes)
        if rec.get("init") == "rapidocr":
            return PPOCREncoder.pretrained(width, charset)
        raise ValueError("recognizer type 'ppocr' needs init: rapidocr (or a checkpoint holding its graph)")
    if rec["type"] == "resnet":
        encoder = ResNetEncoder(tuple(rec.get("widths", (32, 64, 128, 256))), rec.get("hidden", 256))
        return encoder, nn.Linear(encoder.feature_dim, charset.num_classes)
    raise ValueError(f"unknown recognizer type {rec['type']!r} (expected 'ppocr' or 'resnet')")


def save_checkpoint(path, model: LowResOCR, extra: dict[str, Any] | None = None) -> None:
    """Atomically write ``{"config", "graph_spec", "model", **extra}`` (write aside, then rename)."""
    import io
    import os
    from pathlib import Path

    model = getattr(model, "module", model)  # unwrap DDP
    spec = model.encoder.graph.spec if isinstance(model.encoder, PPOCREncoder) else None
    payload = {"format": "lowres-ocr/1", "config": model.config, "graph_spec": spec, "model": model.state_dict(),
               "charset_symbols": None if model.charset == ASCII else model.charset.to_text()}
    payload.update(extra or {})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    buffer = io.BytesIO()  # serialised in memory: a failed file write then raises OSError with its errno
    torch.save(payload, buffer)
    try:
        with open(tmp, "wb") as fh:
            fh.write(buffer.getbuffer())
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as err:  # e.g. ENOSPC: drop the partial file, the previous checkpoint at path stays as it was
        tmp.unlink(missing_ok=True)
        raise OSError(err.errno, f"checkpoint {path} not written ({err.strerror or err}; the previous "
                                 f"{path.name}, if any, is unchanged)", str(tmp)) from None
    os.replace(tmp, path)


def load_checkpoint(path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # truncated or not a torch file
        raise ValueError(f"checkpoint {path} cannot be read: {type(err).__name__}: {err}") from None
    if not isinstance(payload, dict) or payload.get("format") != "lowres-ocr/1":
        raise ValueError(f"{path} is not a lowres-ocr checkpoint (missing format 'lowres-ocr/1')")
    return payload


def load_model(path, device: str | torch.device = "cpu") -> tuple[LowResOCR, dict[str, Any]]:
    """Rebuild the network from a checkpoint; returns (model in eval mode, checkpoint payload)."""
    payload = load_checkpoint(path, device)
    model = build_model(payload["config"], graph_spec=payload.get("graph_spec"), charset_symbols=payload.get("charset_symbols"))
    model.load_state_dict(payload["model"])
    return model.to(device).eval(), payload
