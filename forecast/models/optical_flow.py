"""Optical-flow extrapolation (pySTEPS: Lucas–Kanade motion, semi-Lagrangian advection): the reference that a
nowcasting model must beat on sub-daily fields. An optional extra (``pip install 'forecast[nowcast]'``).

Motion is estimated from the last three input maps of each channel and carries the last map forward; points
advected in from outside a regional grid keep their last value. On a global grid the maps are wrapped in
longitude first, so features cross the seam.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import numpy as np
import torch
from torch import Tensor

log = logging.getLogger(__name__)
NAME = "optical_flow"
MIN_SIZE = 16  # grid points per side below which Lucas-Kanade finds no features
MOTION_FRAMES = 3


def _pysteps():  # -> (motion, extrapolation) functions of an optional package
    with contextlib.redirect_stdout(io.StringIO()):  # pySTEPS prints where its configuration file is on import
        from pysteps.extrapolation.semilagrangian import extrapolate
        from pysteps.motion.lucaskanade import dense_lucaskanade
    return dense_lucaskanade, extrapolate


def unsuitable(step_days: float, mask: np.ndarray, input_steps: int) -> str | None:
    """Why optical flow does not apply to these data (a note for the user), or None when it does."""
    try:
        _pysteps()
    except ImportError:
        return "pySTEPS is not installed (pip install 'forecast[nowcast]')"
    if step_days >= 1:
        return "maps a day or more apart: what moves between them is not advection"
    if min(mask.shape[-2:]) < MIN_SIZE:
        return f"a grid smaller than {MIN_SIZE}×{MIN_SIZE}"
    if not mask.all():
        return "the fields have missing points (land, no data), which the motion estimate cannot cross"
    if input_steps < 2:
        return "a single input map: no motion to estimate"
    return None


def optical_flow(x: Tensor, output_steps: int, periodic: bool) -> Tensor:
    """Extrapolated forecast ``[B, output_steps, C, H, W]`` of the input window ``x`` ``[B, T_in, C, H, W]``."""
    dense_lucaskanade, extrapolate = _pysteps()
    frames = x[:, -MOTION_FRAMES:].detach().double().cpu().numpy()  # [B, T, C, H, W]
    width = frames.shape[-1]
    pad = width // 4 if periodic else 0
    if pad:
        frames = np.concatenate([frames[..., -pad:], frames, frames[..., :pad]], axis=-1)
    out = np.empty((frames.shape[0], output_steps, frames.shape[2], *frames.shape[-2:]))
    for b in range(frames.shape[0]):
        for c in range(frames.shape[2]):
            series = frames[b, :, c]  # [T, H, W']
            # pySTEPS warns of singular matrices in its outlier screen on smooth fields: its own business.
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                motion = dense_lucaskanade(series, verbose=False)
                moved = extrapolate(series[-1], motion, output_steps)  # [output_steps, H, W'], NaN where advected in
            out[b, :, c] = np.where(np.isfinite(moved), moved, series[-1])
    if pad:
        out = out[..., pad: pad + width]
    return torch.from_numpy(out).to(dtype=x.dtype, device=x.device)
