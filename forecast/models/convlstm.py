"""ConvLSTM / ConvGRU encoder–forecaster (Shi et al. 2015): patching, static and forcing inputs, residual head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from forecast.errors import ConfigError
from forecast.models.base import Forecaster, check_static, init_residual_head, with_inputs
from forecast.models.cells import Norm
from forecast.models.stack import CellKind, ConvRecurrentStack, StackState
from forecast.models.warp import advect


class ConvLSTMForecaster(Forecaster):
    """Encoder–forecaster of Shi et al. 2015 (https://arxiv.org/abs/1506.04214) on ``[B, T, C, H, W]``.

    An encoder stack consumes the input window; a forecaster stack of the same depths, with its own
    weights, starts from the encoder's per-layer states and steps once per lead, its input being the
    previous frame. A 1x1 head maps the forecaster's hidden states (all layers, concatenated) to the change
    added to the lead's anchor (see ``Forecaster``). Frames are cut into ``patch_size``² patches
    (space-to-depth) after padding H, W up to a multiple of it; ``static`` fields ``[S, H, W]`` and the
    ``forcing`` values are appended as input channels to every frame. On a ``periodic`` (global) grid the
    convolutions wrap around in longitude. With ``advect`` the head also predicts a flow (at most ``max_flow``
    cells per step) and each lead's change includes the previous frame carried along it (``advect``).
    """

    def __init__(
        self,
        channels: int,
        hidden: Sequence[int] = (64, 64),
        kernel_size: int = 3,
        patch_size: int = 1,
        static: Tensor | None = None,
        cell: CellKind = "convlstm",
        peephole: bool = False,
        norm: Norm = None,
        periodic: bool = False,
        width: int | None = None,
        advect: bool = False,
        max_flow: float = 3.0,
        **forecaster: Any,
    ) -> None:
        super().__init__(channels, **forecaster)
        hidden = tuple(hidden)
        if channels < 1 or patch_size < 1 or not hidden or min(hidden) < 1:
            raise ConfigError(
                f"ConvLSTMForecaster needs channels >= 1, patch_size >= 1 and a non-empty hidden of "
                f"positive sizes, got channels={channels}, patch_size={patch_size}, hidden={hidden}."
            )
        if periodic and width is not None and width % patch_size:
            raise ConfigError(f"patch_size {patch_size} must divide the {width} longitudes of a global grid, so "
                              "that patches wrap around it; pick a divisor.")
        check_static(static)
        self.patch_size = patch_size
        self.static: Tensor | None
        self.register_buffer("static", None if static is None else static.detach().float().clone())
        n_static = 0 if static is None else static.shape[0]
        in_channels = (channels + n_static + self.forcing_channels) * patch_size**2
        options = {"kernel_size": kernel_size, "cell": cell, "peephole": peephole, "norm": norm, "periodic": periodic}
        self.encoder = ConvRecurrentStack(in_channels, hidden, **options)
        self.forecaster = ConvRecurrentStack(in_channels, hidden, **options)
        self.periodic, self.max_flow = periodic, max_flow
        # With advection the head also gives a flow (2 channels): the previous frame is carried along it.
        self.flow_channels = 2 if advect else 0
        self.head = nn.Conv2d(sum(hidden), (channels + self.flow_channels) * patch_size**2, kernel_size=1)
        init_residual_head(self.head)

    def encode(self, x: Tensor, state: StackState | None = None, forcing: Tensor | None = None
               ) -> StackState | None:
        """Run the encoder over ``x`` ``[B, T, C, H, W]``; per-layer states ``(h, c)`` (or ``(h,)``)."""
        self._check_frames(x, "x")
        if x.shape[1] == 0:
            return state
        return self.encoder.run(self._to_grid(x, forcing), state)

    def step(self, frame: Tensor, state: StackState | None, forcing: Tensor | None = None
             ) -> tuple[Tensor, StackState]:
        self._check_frames(frame, "frame")
        state = self.forecaster.step(self._to_grid(frame, forcing), state)
        hidden = torch.cat([layer_state[0] for layer_state in state], dim=1)  # [B, sum(hidden), H', W']
        out = self._from_grid(self.head(hidden), frame.shape[-2:])  # [B, C (+2), H, W]
        if not self.flow_channels:
            return out, state
        change, raw_flow = out[:, : self.channels], out[:, self.channels:]
        flow = self.max_flow * torch.tanh(raw_flow)  # [B, 2, H, W] cells per step, bounded
        moved = advect(frame, flow, self.max_flow, self.periodic) - frame
        return change + moved, state

    def compile_cells(self, **options: object) -> None:
        """``torch.compile`` every cell's step functions in place (the loops stay eager)."""
        self.encoder.compile_cells(**options)
        self.forecaster.compile_cells(**options)

    def _check_frames(self, frames: Tensor, name: str) -> None:
        if frames.shape[-3] != self.channels:
            raise ValueError(f"{name} has {frames.shape[-3]} channels, the network was built for {self.channels}.")
        if self.static is not None and frames.shape[-2:] != self.static.shape[-2:]:
            raise ValueError(
                f"{name} is on a {tuple(frames.shape[-2:])} grid but the static fields are "
                f"{tuple(self.static.shape[-2:])}."
            )

    def _to_grid(self, frames: Tensor, forcing: Tensor | None) -> Tensor:
        """Frames ``[..., C, H, W]`` to cell inputs ``[..., (C+S+F)*p², ceil(H/p), ceil(W/p)]``."""
        frames = with_inputs(frames, self.static, forcing)  # [..., C+S+F, H, W]
        p = self.patch_size
        if p == 1:
            return frames
        height, width = frames.shape[-2:]
        # Zero padding (the normalised mean) at the bottom/right, cropped off again in _from_grid.
        frames = F.pad(frames, (0, -width % p, 0, -height % p))  # [..., C+S+F, p*ceil(H/p), p*ceil(W/p)]
        return F.pixel_unshuffle(frames, p)  # [..., (C+S+F)*p², ceil(H/p), ceil(W/p)]

    def _from_grid(self, patches: Tensor, size: torch.Size) -> Tensor:
        """Head output ``[B, C*p², H', W']`` back to frames ``[B, C, H, W]`` (``size`` = (H, W))."""
        if self.patch_size == 1:
            return patches
        frames = F.pixel_shuffle(patches, self.patch_size)  # [B, C, p*H', p*W']
        return frames[..., : size[0], : size[1]]  # [B, C, H, W]
