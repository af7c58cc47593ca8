"""Thin-plate-spline spatial transformer (the ASTER rectifier), initialised to the identity."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _fiducials(k: int) -> torch.Tensor:
    """``k`` control points on the top and bottom edges, in [-1, 1] coordinates (x, y)."""
    xs = torch.linspace(-1.0, 1.0, k // 2)
    top = torch.stack([xs, torch.full_like(xs, -1.0)], dim=1)
    bottom = torch.stack([xs, torch.full_like(xs, 1.0)], dim=1)
    return torch.cat([top, bottom], dim=0)


def _tps_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return 0.5 * d2 * torch.log(d2 + 1e-9)


class TPSRectifier(nn.Module):
    """Predicts ``num_points`` source control points from a small CNN and resamples the image with a TPS grid."""

    def __init__(self, out_size: tuple[int, int] = (32, 128), num_points: int = 20):
        super().__init__()
        self.out_size = out_size
        k = num_points
        self.loc = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(True), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(True), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(True), nn.AdaptiveAvgPool2d(1),
            nn.Flatten(), nn.Linear(64, 64), nn.ReLU(True),
        )
        self.fc = nn.Linear(64, 2 * k)
        target = _fiducials(k)
        nn.init.zeros_(self.fc.weight)
        with torch.no_grad():
            self.fc.bias.copy_(target.flatten())
        # Solve once for the TPS mapping from the fixed target points to the output grid.
        h, w = out_size
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        grid = torch.stack([xs.flatten(), ys.flatten()], dim=1)  # [HW, 2]
        l_mat = torch.zeros(k + 3, k + 3)
        l_mat[:k, :k] = _tps_kernel(target, target)
        l_mat[:k, k] = 1
        l_mat[:k, k + 1:] = target
        l_mat[k, :k] = 1
        l_mat[k + 1:, :k] = target.t()
        inv = torch.linalg.inv(l_mat)
        rep = torch.cat([_tps_kernel(grid, target), torch.ones(h * w, 1), grid], dim=1)  # [HW, k+3]
        self.register_buffer("grid_map", rep @ inv[:, :k], persistent=False)  # [HW, k]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        src = self.fc(self.loc(x)).view(b, -1, 2)  # [B, k, 2]
        grid = torch.matmul(self.grid_map, src).view(b, self.out_size[0], self.out_size[1], 2)
        return F.grid_sample(x, grid.clamp(-1, 1), mode="bilinear", padding_mode="border", align_corners=True)
