"""A learned linear blend of the input window and the climatology: the anchor a forecaster's residual starts from.

Lead k of channel c is ``Σ_i w[k,c,i]·x_i + u[k,c]·clim(valid_k) + Σ_i v[k,c,i]·clim(t_i) + b[k,c]``. Every
simple reference but optical flow is one choice of these weights: persistence (w = last), the window mean
(w = 1/T), climatology (u = 1), anomaly persistence (w = v' = last, u = 1, v = -last). Least squares on the
training windows (``fit``) therefore starts the network at least as good as each of them on that data.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

RIDGE = 1e-4  # relative to the mean diagonal of the normal equations: keeps collinear features solvable


class Blend(nn.Module):
    """``forward(x, climatology, horizon)``: anchors ``[B, horizon, C, H, W]`` from the input window ``x``
    ``[B, T_in, C, H, W]`` and the climatology of all ``T_in + horizon`` frames ``[B, T_in + horizon, C, H, W]``.
    Starts as persistence until ``fit`` sets the least-squares weights."""

    def __init__(self, input_steps: int, output_steps: int, channels: int) -> None:
        super().__init__()
        self.input_steps, self.output_steps = input_steps, output_steps
        weight = torch.zeros(output_steps, channels, self.features)  # [T_out, C, 2*T_in + 2]
        weight[:, :, input_steps - 1] = 1.0  # persistence
        self.weight = nn.Parameter(weight)

    @property
    def features(self) -> int:
        """Per lead: the T_in inputs, the lead's climatology, the T_in inputs' climatology, a constant."""
        return 2 * self.input_steps + 2

    def design(self, x: Tensor, climatology: Tensor, horizon: int) -> Tensor:
        """Features ``[B, horizon, C, P, H, W]`` of each lead (P = ``features``)."""
        steps = self.input_steps
        if x.shape[1] != steps or climatology.shape[1] < steps + horizon or horizon > self.output_steps:
            raise ValueError(f"blend of {steps} input steps and up to {self.output_steps} leads got inputs "
                             f"{tuple(x.shape)}, climatology {tuple(climatology.shape)} and horizon {horizon}.")
        inputs = x.transpose(1, 2)[:, None].expand(-1, horizon, -1, -1, -1, -1)  # [B, horizon, C, T_in, H, W]
        clim_in = climatology[:, :steps].transpose(1, 2)[:, None].expand_as(inputs)
        clim_out = climatology[:, steps: steps + horizon, :, None]  # [B, horizon, C, 1, H, W]
        ones = torch.ones_like(clim_out)
        return torch.cat([inputs, clim_out, clim_in, ones], dim=3)

    def forward(self, x: Tensor, climatology: Tensor, horizon: int) -> Tensor:
        steps = self.input_steps
        weight = self.weight[:horizon].to(x.dtype)  # [horizon, C, P]
        # The design matrix is never built here: the blend is three contractions over the window's frames.
        base = torch.einsum("kci,bichw->bkchw", weight[..., :steps], x)
        base = base + weight[None, :, :, steps, None, None] * climatology[:, steps: steps + horizon]
        base = base + torch.einsum("kci,bichw->bkchw", weight[..., steps + 1: 2 * steps + 1], climatology[:, :steps])
        return base + weight[None, :, :, -1, None, None]

    def normal_equations(self, x: Tensor, climatology: Tensor, y: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
        """One batch's share of the least-squares problem per lead and channel: ``(G [T_out, C, P, P],
        r [T_out, C, P])`` in float64, with ``weights`` ``[B, C, H, W]`` (latitude × mask) on every point."""
        design = self.design(x, climatology, y.shape[1]).double()  # [B, T, C, P, H, W]
        w = weights.double()[:, None, :, None]  # [B, 1, C, 1, H, W]
        gram = torch.einsum("bkcphw,bkcqhw->kcpq", design * w, design)
        rhs = torch.einsum("bkcphw,bkchw->kcp", design * w, y.double())
        return gram, rhs

    @torch.no_grad()
    def fit(self, gram: Tensor, rhs: Tensor) -> None:
        """Set the weights to the (slightly ridged) least-squares solution of summed normal equations."""
        scale = gram.diagonal(dim1=-2, dim2=-1).mean(dim=-1).clamp_min(1e-12)[..., None, None]  # [T, C, 1, 1]
        eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
        solution = torch.linalg.solve(gram + RIDGE * scale * eye, rhs[..., None])[..., 0]
        self.weight.copy_(solution.to(self.weight.dtype))
