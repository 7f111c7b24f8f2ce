"""Semi-Lagrangian advection of a frame by a flow field: what moves weather maps from one step to the next.

A forecaster that predicts where each point comes from (a flow) and carries the previous frame along it has the
inductive bias of an optical-flow nowcast (pySTEPS' extrapolation, or NowcastNet's evolution network, Zhang et
al. 2023, https://doi.org/10.1038/s41586-023-06184-4), and still learns growth, decay and everything else as
its residual.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def advect(frame: Tensor, flow: Tensor, max_cells: float, periodic: bool) -> Tensor:
    """``frame`` ``[B, C, H, W]`` carried by ``flow`` ``[B, 2, H, W]`` (eastward, northward displacement in grid
    cells per step, at most ``max_cells``): the value at a point is the frame's value, bilinearly interpolated,
    where the flow came from. Wraps round in longitude on a ``periodic`` grid; edges repeat elsewhere."""
    height, width = frame.shape[-2:]
    pad = int(max_cells) + 2 if periodic else 0
    if pad:
        frame = F.pad(frame, (pad, pad, 0, 0), mode="circular")  # [B, C, H, W + 2 pad]
    rows = torch.arange(height, device=frame.device, dtype=flow.dtype)[:, None]  # [H, 1]
    cols = torch.arange(width, device=frame.device, dtype=flow.dtype)[None, :]  # [1, W]
    source_x = cols - flow[:, 0] + pad  # [B, H, W], columns of the padded frame
    source_y = rows - flow[:, 1]
    # grid_sample's coordinates run from -1 to 1 across the (padded) frame, corners aligned.
    grid = torch.stack([2 * source_x / (width + 2 * pad - 1) - 1, 2 * source_y / max(height - 1, 1) - 1], dim=-1)
    return F.grid_sample(frame, grid.to(frame.dtype), mode="bilinear", padding_mode="border", align_corners=True)
