"""Fits on the training windows before any gradient step: the damped-persistence coefficients and the least
squares blend a forecaster's residual starts from. One pass, no network; every DDP rank fits the same."""

from __future__ import annotations

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
    windows: int


def fit_references(dataset: WindowDataset, lat_weights: Tensor, batch_size: int = 16) -> ReferenceFit:
    """Accumulate, over up to ``MAX_WINDOWS`` training windows, what the references and the blend are fitted on."""
    picked = np.unique(np.linspace(0, len(dataset) - 1, min(MAX_WINDOWS, len(dataset))).round().astype(int))
    blend = Blend(dataset.input_steps, dataset.output_steps, int(dataset.mask.shape[0]))
    gram = rhs = lagged = variance = None
    for first in range(0, picked.size, batch_size):
        batch = default_collate([dataset[int(i)] for i in picked[first:first + batch_size]])
        context = Context(batch["climatology"], batch["forcing"])
        weights = point_weights(batch["mask"], lat_weights.float())
        g, r = blend.normal_equations(batch["x"], batch["climatology"], batch["y"], weights)
        lag, var = damping_sums(batch["x"], context, batch["y"], weights)
        gram, rhs = (g, r) if gram is None else (gram + g, rhs + r)
        lagged, variance = (lag, var) if lagged is None else (lagged + lag, variance + var)
    return ReferenceFit(damping_from_sums(lagged, variance), gram, rhs, int(picked.size))
