"""Run a packaged model, and the references it was scored against, over many input windows in batches, on the
GPU when there is one."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch

from forecast.data.stats import denormalise, normalise
from forecast.models.base import Context
from forecast.models.baselines import reference_forecasts
from forecast.models.optical_flow import NAME as OPTICAL_FLOW
from forecast.models.optical_flow import optical_flow, unsuitable
from forecast.package import ModelPackage

T = TypeVar("T")


class Runner:
    """``forecast(x, times)``: forecasts ``[N, T_out, C, H, W]`` from windows ``[N, T_in, C, H, W]`` in normalised
    units (the model's training statistics), ``times`` ``[N, T_in + T_out]`` being every frame's time (inputs
    and valid times); ``physical(y)``: the same in the variables' units, NaN where the model has no data."""

    def __init__(self, package: ModelPackage, batch_size: int = 16, device: str | None = None):
        self.package, self.card = package, package.card
        self.batch_size = batch_size
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.net = package.net.to(self.device).eval()
        self.output_steps = self.card.output_steps
        self.mean, self.std = package.arrays["mean"], package.arrays["std"]
        self.mask = package.arrays["mask"].astype(bool)
        self.climatology = torch.from_numpy(package.arrays["climatology"])  # [S, C, H, W] normalised
        self.damping = torch.from_numpy(package.arrays["damping"]).to(self.device)
        self.optical_flow_note = unsuitable(self.card.step.approximate_days, self.mask, self.card.input_steps)

    def context(self, times: np.ndarray) -> Context:
        """The climatology and forcing of every frame: ``times`` ``[N, T]`` → ``Context`` ``[N, T, …]``."""
        slots = self.card.slots.of(times.ravel()).reshape(times.shape)
        forcing = self.card.network.cycles.features(times.ravel()).reshape(*times.shape, -1)
        return Context(self.climatology[torch.from_numpy(slots)], torch.from_numpy(forcing))

    @torch.inference_mode()
    def _batches(self, x: np.ndarray, times: np.ndarray, run: Callable[[torch.Tensor, Context], T]) -> list[T]:
        """``run(batch, context)`` over batches of windows on the device."""
        outputs = []
        for start in range(0, len(x), self.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(x[start:start + self.batch_size])).to(self.device)
            context = self.context(times[start:start + self.batch_size]).to(self.device)
            outputs.append(run(batch, context))
        return outputs

    def forecast(self, x: np.ndarray, times: np.ndarray) -> np.ndarray:
        """The model's forecast ``[N, T_out, C, H, W]``, normalised."""
        parts = self._batches(x, times, lambda b, c: self.net(b, self.output_steps, c).float().cpu().numpy())
        return np.concatenate(parts) if parts else np.empty((0, self.output_steps, *x.shape[2:]), np.float32)

    def references(self, x: np.ndarray, times: np.ndarray) -> dict[str, np.ndarray]:
        """Every reference's forecast ``[N, T_out, C, H, W]``, normalised (optical flow where it applies)."""

        def run(batch: torch.Tensor, context: Context) -> dict[str, np.ndarray]:
            out = reference_forecasts(batch, context, self.damping, self.output_steps)
            if self.optical_flow_note is None:
                out[OPTICAL_FLOW] = optical_flow(batch, self.output_steps, self.card.network.periodic)
            return {name: value.float().cpu().numpy() for name, value in out.items()}

        parts = self._batches(x, times, run)
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]} if parts else {}

    def physical(self, y: np.ndarray) -> np.ndarray:
        """Normalised ``[..., C, H, W]`` → physical units, NaN where the model's mask says a point has no data."""
        return np.where(self.mask, denormalise(y, self.mean, self.std, channel_axis=-3), np.nan).astype(np.float32)

    def normalise(self, physical: np.ndarray) -> np.ndarray:
        """Physical ``[..., C, H, W]`` → normalised with the model's statistics; NaN → 0 as in training."""
        return np.nan_to_num(normalise(physical, self.mean, self.std, channel_axis=-3), nan=0.0).astype(np.float32)

    def climatology_physical(self, times: np.ndarray) -> np.ndarray:
        """The climatology ``[N, T, C, H, W]`` of ``times`` ``[N, T]`` in physical units (the ACC's reference)."""
        return self.physical(self.context(times).climatology.numpy())
