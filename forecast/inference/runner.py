"""Run a packaged model over many input windows in batches, on the GPU when there is one."""

from __future__ import annotations

import numpy as np
import torch

from forecast.data.stats import denormalise
from forecast.models.package import ModelPackage


class Runner:
    """``normalised(x)``: forecasts ``[N, T_out, C, H, W]`` from windows ``[N, T_in, C, H, W]`` (normalised units,
    the model's training statistics); ``physical(y)``: the same in the variables' units, NaN where invalid."""

    def __init__(self, package: ModelPackage, batch_size: int = 16, device: str | None = None):
        self.package = package
        self.batch_size = batch_size
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.net = package.net.to(self.device).eval()
        self.output_steps = int(package.description["output_steps"])
        self.mean, self.std = package.arrays["mean"], package.arrays["std"]
        self.mask = package.arrays["mask"].astype(bool)

    @torch.inference_mode()
    def normalised(self, x: np.ndarray) -> np.ndarray:
        outputs = []
        for start in range(0, len(x), self.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(x[start:start + self.batch_size])).to(self.device)
            outputs.append(self.net(batch, self.output_steps).float().cpu().numpy())
        return np.concatenate(outputs) if outputs else np.empty((0, self.output_steps, *x.shape[2:]), np.float32)

    def physical(self, y: np.ndarray) -> np.ndarray:
        """Normalised ``[..., C, H, W]`` → physical units, NaN where the model's mask says a point has no data."""
        return np.where(self.mask, denormalise(y, self.mean, self.std, channel_axis=-3), np.nan).astype(np.float32)

    def normalise(self, physical: np.ndarray) -> np.ndarray:
        """Physical ``[..., C, H, W]`` → normalised with the model's statistics; NaN → 0 as in training."""
        shape = (-1, 1, 1)
        values = (physical - self.mean.reshape(shape)) / self.std.reshape(shape)
        return np.nan_to_num(values, nan=0.0).astype(np.float32)
