"""Every reference forecast, once: persistence, climatology per calendar slot, the input-window mean and damped
anomaly persistence. Validation, evaluation, the registry's champion rule and the plots all score these.

All work on normalised ``[B, T, C, H, W]`` tensors; the climatology comes with the window's ``Context``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from forecast.errors import ConfigError
from forecast.models.base import Context, Forecaster

REFERENCES = ("persistence", "climatology", "window_mean", "damped_persistence")


def persistence(x: Tensor, output_steps: int) -> Tensor:
    """Every lead repeats the last observed frame."""
    return x[:, -1:].expand(-1, output_steps, -1, -1, -1)


def climatology(x: Tensor, context: Context, output_steps: int) -> Tensor:
    """Each lead is the climatology of its valid time's slot (day of year × hour, month, …)."""
    steps = x.shape[1]
    return context.climatology[:, steps: steps + output_steps].to(x.dtype)


def window_mean(x: Tensor, output_steps: int) -> Tensor:
    """Every lead is the mean of the input window: a smoother that noisy and trending series reward."""
    return x.mean(dim=1, keepdim=True).expand(-1, output_steps, -1, -1, -1)


def damped_persistence(x: Tensor, context: Context, damping: Tensor, output_steps: int) -> Tensor:
    """Climatology plus the last anomaly damped per point and lead: ``clim(v) + α[k]·(x_last − clim(t_last))``,
    ``damping`` ``[T_out, C, H, W]`` being α, the anomalies' lag-k regression on the training period."""
    steps = x.shape[1]
    anomaly = x[:, -1] - context.climatology[:, steps - 1].to(x.dtype)  # [B, C, H, W]
    return climatology(x, context, output_steps) + damping[None, :output_steps].to(x.dtype) * anomaly[:, None]


def reference_forecasts(x: Tensor, context: Context, damping: Tensor, output_steps: int) -> dict[str, Tensor]:
    """Every reference's forecast ``[B, output_steps, C, H, W]``, by name (``REFERENCES`` order)."""
    return {
        "persistence": persistence(x, output_steps),
        "climatology": climatology(x, context, output_steps),
        "window_mean": window_mean(x, output_steps),
        "damped_persistence": damped_persistence(x, context, damping, output_steps),
    }


def damping_sums(x: Tensor, context: Context, y: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    """One batch's share of the damping fit, float64: ``Σ a_last·a_k`` ``[T_out, C, H, W]`` and ``Σ a_last²``
    ``[C, H, W]`` over samples, anomalies ``a`` taken from the climatology; ``weights`` ``[B, C, H, W]`` zero
    out invalid points."""
    steps = x.shape[1]
    clim = context.climatology.double()
    last = (x[:, -1].double() - clim[:, steps - 1]) * (weights > 0)  # [B, C, H, W]
    future = y.double() - clim[:, steps: steps + y.shape[1]]  # [B, T, C, H, W]
    return (last[:, None] * future).sum(dim=0), (last * last).sum(dim=0)


def damping_from_sums(lagged: Tensor, variance: Tensor) -> Tensor:
    """α ``[T_out, C, H, W]`` in [0, 1]: the lag regression of the anomalies (0 where a point never varies)."""
    alpha = torch.where(variance > 0, lagged / variance.clamp_min(1e-300), torch.zeros_like(lagged))
    return alpha.clamp(0.0, 1.0).float()


class Reference(Forecaster):
    """A reference forecast behind the ``Forecaster`` call, to train (validate and package) as a model kind."""

    def __init__(self, name: str, channels: int, damping: Tensor | None = None) -> None:
        super().__init__(channels)
        if name not in REFERENCES:
            raise ConfigError(f"unknown reference {name!r}; references are {', '.join(REFERENCES)}.")
        if name == "damped_persistence" and damping is None:
            raise ConfigError("the damped_persistence reference needs its damping [T_out, C, H, W].")
        self.name = name
        self.damping: Tensor | None
        # Not persistent: the package keeps the damping once, among its arrays, and builds the reference from it.
        self.register_buffer("damping", None if damping is None else damping.detach().float().clone(),
                             persistent=False)

    def forward(self, x: Tensor, output_steps: int, context: Context | None = None, target: Tensor | None = None,
                teacher_forcing: float = 0.0) -> Tensor:
        if self.name == "persistence":
            return persistence(x, output_steps).clone()
        if self.name == "window_mean":
            return window_mean(x, output_steps).clone()
        if context is None:
            raise ValueError(f"the {self.name} reference needs the window's Context (its climatology).")
        if self.name == "climatology":
            return climatology(x, context, output_steps).clone()
        return damped_persistence(x, context, self.damping, output_steps)
