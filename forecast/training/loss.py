"""Masked, latitude-weighted errors in normalised space, and per-lead accumulators that reduce exactly under DDP."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

LossKind = Literal["mse", "mae"]


def point_weights(mask: Tensor, lat_weights: Tensor) -> Tensor:
    """``[B, C, H, W]`` weights: latitude (cell-area) weight where the point is valid, 0 elsewhere."""
    return mask.to(lat_weights.dtype) * lat_weights[:, None]  # lat_weights [H] → [H, 1] broadcasts over W


def weighted_error(y_hat: Tensor, y: Tensor, weights: Tensor, kind: LossKind = "mse") -> Tensor:
    """Scalar mean of the squared (``mse``) or absolute (``mae``) error, ``y`` ``[B, T, C, H, W]``,
    weighted by ``weights`` ``[B, C, H, W]`` (invalid points weigh 0)."""
    diff = (y_hat - y).float()
    error = diff.square() if kind == "mse" else diff.abs()
    w = weights[:, None]  # [B, 1, C, H, W]: the same weights at every lead
    return (error * w).sum() / (w.sum() * y.shape[1]).clamp_min(1e-12)


class LeadErrors:
    """Sums of weighted squared error and of weights per lead and channel, so RMSE per lead is exact however
    the samples were spread over batches and ranks (sum first, divide once)."""

    def __init__(self, leads: int, channels: int, device: torch.device):
        self.squared = torch.zeros(leads, channels, dtype=torch.float64, device=device)
        self.weight = torch.zeros(leads, channels, dtype=torch.float64, device=device)

    def update(self, y_hat: Tensor, y: Tensor, weights: Tensor) -> None:
        """Add a batch: ``y_hat``, ``y`` ``[B, T, C, H, W]``, ``weights`` ``[B, C, H, W]``."""
        w = weights[:, None].double()  # [B, 1, C, H, W]
        self.squared += ((y_hat.double() - y.double()).square() * w).sum(dim=(0, 3, 4))  # [T, C]
        self.weight += w.sum(dim=(0, 3, 4)).expand_as(self.weight)

    def rmse(self) -> Tensor:
        """``[T, C]`` RMSE in normalised units."""
        return (self.squared / self.weight.clamp_min(1e-12)).sqrt()
