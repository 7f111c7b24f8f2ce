"""A learned linear blend of the input window and the climatology: the anchor a forecaster's residual starts from.

Lead k of channel c is ``Σ_i w[k,c,i]·x_i + u[k,c]·clim(valid_k) + Σ_i v[k,c,i]·clim(t_i) + b[k,c]
+ d[k,c]·α[k]·(x_T − clim(t_T))``, α being the damped-persistence coefficients fitted per point. Every simple
reference but optical flow is one choice of these weights: persistence (w = last), the window mean (w = 1/T),
climatology (u = 1), damped anomaly persistence (u = 1, d = 1). Least squares on the training windows
(``fit``) therefore starts the network at least as good as each of them on that data.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# Ridge towards the best single reference on the training windows, relative to the mean diagonal of the normal
# equations: a prior on the strongest simple forecast, left only where the data insist (a few dozen windows of
# a short monthly record would otherwise be fitted to their noise).
RIDGE = 1e-2


class Blend(nn.Module):
    """``forward(x, climatology, output_steps)``: anchors ``[B, output_steps, C, H, W]`` from the input window
    ``x`` ``[B, T_in, C, H, W]`` and the climatology of all ``T_in + output_steps`` frames.
    Starts as persistence until ``fit`` sets the least-squares weights."""

    def __init__(self, input_steps: int, output_steps: int, channels: int, damping: Tensor | None = None) -> None:
        super().__init__()
        self.input_steps, self.output_steps = input_steps, output_steps
        weight = torch.zeros(output_steps, channels, self.features)  # [T_out, C, 2*T_in + 3]
        weight[:, :, input_steps - 1] = 1.0  # persistence
        self.weight = nn.Parameter(weight)
        # α [T_out, C, H, W]; not persistent: the package keeps it once, among its arrays.
        self.damping: Tensor | None
        self.register_buffer("damping", None if damping is None else damping.detach().float().clone(),
                             persistent=False)

    @property
    def features(self) -> int:
        """Per lead: the T_in inputs, the lead's climatology, the T_in inputs' climatology, a constant, the damped
        last anomaly."""
        return 2 * self.input_steps + 3

    def design(self, x: Tensor, climatology: Tensor, output_steps: int) -> Tensor:
        """Features ``[B, output_steps, C, P, H, W]`` of each lead (P = ``features``)."""
        steps = self.input_steps
        if x.shape[1] != steps or climatology.shape[1] < steps + output_steps or output_steps > self.output_steps:
            raise ValueError(f"blend of {steps} input steps and up to {self.output_steps} leads got inputs "
                             f"{tuple(x.shape)}, climatology {tuple(climatology.shape)} and {output_steps} leads.")
        inputs = x.transpose(1, 2)[:, None].expand(-1, output_steps, -1, -1, -1, -1)  # [B, T_out, C, T_in, H, W]
        clim_in = climatology[:, :steps].transpose(1, 2)[:, None].expand_as(inputs)
        clim_out = climatology[:, steps: steps + output_steps, :, None]  # [B, output_steps, C, 1, H, W]
        ones = torch.ones_like(clim_out)
        damped = self._damped(x, climatology, output_steps)[:, :, :, None]  # [B, T_out, C, 1, H, W]
        return torch.cat([inputs, clim_out, clim_in, ones, damped], dim=3)

    def _damped(self, x: Tensor, climatology: Tensor, output_steps: int) -> Tensor:
        """``α[k]·(x_T − clim(t_T))`` ``[B, output_steps, C, H, W]`` (zero without damping coefficients)."""
        anomaly = x[:, -1] - climatology[:, self.input_steps - 1]  # [B, C, H, W]
        if self.damping is None:
            return torch.zeros_like(anomaly)[:, None].expand(-1, output_steps, -1, -1, -1)
        return self.damping[None, :output_steps].to(x.dtype) * anomaly[:, None]

    def forward(self, x: Tensor, climatology: Tensor, output_steps: int) -> Tensor:
        steps = self.input_steps
        weight = self.weight[:output_steps].to(x.dtype)  # [output_steps, C, P]
        # The design matrix is never built here: the blend is three contractions over the window's frames.
        base = torch.einsum("kci,bichw->bkchw", weight[..., :steps], x)
        base = base + weight[None, :, :, steps, None, None] * climatology[:, steps: steps + output_steps]
        base = base + torch.einsum("kci,bichw->bkchw", weight[..., steps + 1: 2 * steps + 1], climatology[:, :steps])
        base = base + weight[None, :, :, 2 * steps + 1, None, None]
        return base + weight[None, :, :, -1, None, None] * self._damped(x, climatology, output_steps)

    def normal_equations(self, x: Tensor, climatology: Tensor, y: Tensor, weights: Tensor
                         ) -> tuple[Tensor, Tensor, Tensor]:
        """One batch's share of the least-squares problem per lead and channel, in float64: ``G`` ``[T_out, C, P,
        P]``, ``r`` ``[T_out, C, P]`` and ``Σ w·y²`` ``[T_out, C]``, with ``weights`` ``[B, C, H, W]`` (latitude ×
        mask) on every point."""
        design = self.design(x, climatology, y.shape[1]).double()  # [B, T, C, P, H, W]
        w = weights.double()[:, None, :, None]  # [B, 1, C, 1, H, W]
        gram = torch.einsum("bkcphw,bkcqhw->kcpq", design * w, design)
        rhs = torch.einsum("bkcphw,bkchw->kcp", design * w, y.double())
        return gram, rhs, torch.einsum("bkchw,bchw->kc", y.double() ** 2, weights.double())

    def references(self) -> dict[str, Tensor]:
        """The simple forecasts as blend weights ``[P]``."""
        steps, features = self.input_steps, self.features
        weights = {name: torch.zeros(features, dtype=torch.float64) for name in
                   ("persistence", "window_mean", "climatology", "damped_persistence")}
        weights["persistence"][steps - 1] = 1.0
        weights["window_mean"][:steps] = 1.0 / steps
        weights["climatology"][steps] = 1.0
        weights["damped_persistence"][[steps, features - 1]] = 1.0
        return weights

    @torch.no_grad()
    def fit(self, gram: Tensor, rhs: Tensor, squares: Tensor) -> str:
        """Set the weights to the least-squares solution of summed normal equations, ridged towards the simple
        forecast that scores best on them (per lead and channel); returns the most chosen one's name."""
        references = self.references()
        stack = torch.stack(list(references.values())).to(gram)  # [R, P]
        mse = (torch.einsum("rp,kcpq,rq->rkc", stack, gram, stack) - 2 * torch.einsum("rp,kcp->rkc", stack, rhs)
               + squares)  # [R, T, C] training error sums of each reference
        best = mse.argmin(dim=0)  # [T, C]
        prior = stack[best]  # [T, C, P]
        scale = gram.diagonal(dim1=-2, dim2=-1).mean(dim=-1).clamp_min(1e-12)[..., None]  # [T, C, 1]
        eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
        solution = torch.linalg.solve(gram + RIDGE * scale[..., None] * eye, (rhs + RIDGE * scale * prior)[..., None])
        self.weight.copy_(solution[..., 0].to(self.weight.dtype))
        return list(references)[int(best.flatten().mode().values)]
