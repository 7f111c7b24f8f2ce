"""Fits on the training windows before any gradient step: the damped-persistence coefficients and the least
squares blend a forecaster's residual starts from. One pass, no network; every DDP rank fits the same."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from torch import Tensor
from torch.utils.data import default_collate

from forecast.data.dataset import WindowDataset
from forecast.models.base import Context
from forecast.models.baselines import damping_from_sums, damping_sums
from forecast.models.blend import Blend
from forecast.training.loss import point_weights

MAX_WINDOWS = 4096  # evenly spaced training windows are plenty for a few hundred coefficients


@dataclass
class ReferenceFit:
    """Damping ``[T_out, C, H, W]`` and the blend's summed normal equations (``Blend.fit`` solves them)."""

    damping: Tensor
    gram: Tensor
    rhs: Tensor
    squares: Tensor
    windows: int


def _batches(dataset: WindowDataset, picked: np.ndarray, batch_size: int) -> Iterator[dict[str, Tensor]]:
    for first in range(0, picked.size, batch_size):
        yield default_collate([dataset[int(i)] for i in picked[first:first + batch_size]])


def fit_references(dataset: WindowDataset, lat_weights: Tensor, batch_size: int = 16) -> ReferenceFit:
    """Fit, on up to ``MAX_WINDOWS`` training windows, the damping (first pass), then the blend that includes
    damped persistence among its features (second pass)."""
    picked = np.unique(np.linspace(0, len(dataset) - 1, min(MAX_WINDOWS, len(dataset))).round().astype(int))
    lagged = variance = None
    for batch in _batches(dataset, picked, batch_size):
        weights = point_weights(batch["mask"], lat_weights.float())
        lag, var = damping_sums(batch["x"], Context(batch["climatology"], batch["forcing"]), batch["y"], weights)
        lagged, variance = (lag, var) if lagged is None else (lagged + lag, variance + var)
    damping = damping_from_sums(lagged, variance)
    blend = Blend(dataset.input_steps, dataset.output_steps, int(dataset.mask.shape[0]), damping)
    sums = None
    for batch in _batches(dataset, picked, batch_size):
        weights = point_weights(batch["mask"], lat_weights.float())
        part = blend.normal_equations(batch["x"], batch["climatology"], batch["y"], weights)
        sums = part if sums is None else tuple(a + b for a, b in zip(sums, part, strict=True))
    return ReferenceFit(damping, *sums, windows=int(picked.size))
