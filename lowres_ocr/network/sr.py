"""Super-resolution branch: 16×64 LR crop → 32×128 image (TSRN-style residual SR blocks)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SequenceUnit(nn.Module):
    """Bidirectional GRU along the text direction (width), applied to every feature row, residual."""

    def __init__(self, channels: int):
        super().__init__()
        self.gru = nn.GRU(channels, channels // 2, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * (channels // 2), channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        seq = x.permute(0, 2, 3, 1).reshape(b * h, w, c)
        out, _ = self.gru(seq)
        out = self.proj(out).reshape(b, h, w, c).permute(0, 3, 1, 2)
        return x + out


class SRBlock(nn.Module):
    """conv-BN-PReLU-conv-BN, then a sequence unit; residual around the whole block."""

    def __init__(self, channels: int, sequence: bool = True):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels),
        )
        self.sequence = SequenceUnit(channels) if sequence else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sequence(self.body(x))


def bicubic_upsample(lr: torch.Tensor, scale: int = 2) -> torch.Tensor:
    """The baseline the SR branch must beat: bicubic ×``scale``, clamped to [0, 1] (×1: the input, clamped)."""
    if scale == 1:
        return lr.clamp(0, 1)
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)


class Resample(nn.Module):
    """The SR branch of a model without one (config ``sr: {kind: none}``): bicubic ×``scale``, clamped to [0, 1].

    With a direct-read geometry (``sr_scale`` 1: the crop arrives at the recognizer's resolution) this is the
    identity up to the clamp, so the served SR image is the network input.
    """

    def __init__(self, scale: int = 1):
        super().__init__()
        self.scale = scale

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return bicubic_upsample(lr, self.scale)


def build_sr(config: dict, scale: int) -> nn.Module:
    """The SR branch a model config's ``sr`` block names: residual SR units (default) or ``kind: none``."""
    kind = config.get("kind", "residual")
    if kind == "none":
        return Resample(scale)
    if kind != "residual":
        raise ValueError(f"sr.kind must be 'residual' or 'none', got {kind!r}")
    return SRBranch(config["channels"], config["blocks"], config.get("sequence", True), scale=scale,
                    tail_kernel=config.get("tail_kernel", 9), residual_scale=config.get("residual_scale", 1.0))


class SRBranch(nn.Module):
    """Predicts a residual over bicubic upsampling, so an untrained branch starts as plain bicubic.

    The last conv starts at zero. Adam moves each of its weights by about ``lr`` per step whatever the gradient, so
    its output moves by about fan-in × lr: a 9×9 kernel over 64 channels (fan-in 5184) wrecks the image in a few
    steps at lr 1e-4. A small ``tail_kernel`` and a ``residual_scale`` < 1 keep a fresh branch near bicubic.
    """

    def __init__(self, channels: int = 64, blocks: int = 4, sequence: bool = True, scale: int = 2,
                 tail_kernel: int = 9, residual_scale: float = 1.0):
        super().__init__()
        self.scale = scale
        self.residual_scale = residual_scale
        self.head = nn.Sequential(nn.Conv2d(3, channels, 9, padding=4), nn.PReLU(channels))
        self.blocks = nn.Sequential(*[SRBlock(channels, sequence) for _ in range(blocks)])
        self.fuse = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels))
        self.up = nn.Sequential(nn.Conv2d(channels, channels * scale * scale, 3, padding=1), nn.PixelShuffle(scale), nn.PReLU(channels))
        self.tail = nn.Conv2d(channels, 3, tail_kernel, padding=tail_kernel // 2)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        if self.residual_scale == 0 and not self.training:
            # the residual is multiplied by 0: the image is bicubic, so inference (and the ONNX graph) skips the branch
            return bicubic_upsample(lr, self.scale)
        base = F.interpolate(lr, scale_factor=self.scale, mode="bicubic", align_corners=False)
        feat = self.head(lr)
        feat = feat + self.fuse(self.blocks(feat))
        return torch.clamp(base + self.residual_scale * self.tail(self.up(feat)), 0.0, 1.0)
