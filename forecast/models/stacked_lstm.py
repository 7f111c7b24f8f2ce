"""FC-LSTM baseline (Shi et al. 2015): ``nn.LSTM`` encoder–forecaster on flattened, patched or point maps."""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import torch.nn.functional as F
from torch import Tensor, nn

from forecast.errors import ConfigError
from forecast.models.base import Forecaster, check_static, init_residual_head, with_inputs

Mode: TypeAlias = Literal["flatten", "patch", "point"]
LSTMState: TypeAlias = tuple[Tensor, Tensor]
MODES = ("flatten", "patch", "point")


class StackedLSTMForecaster(Forecaster):
    """Vector LSTM encoder–forecaster on ``[B, T, C, H, W]`` maps (the FC-LSTM of Shi et al. 2015).

    ``mode`` says what one LSTM sequence is: "flatten", a whole frame ``(C+S)*H*W`` as one vector;
    "patch", each ``patch_size``² patch of a frame (patches become batch entries, one shared LSTM);
    "point", each grid point's ``C+S`` values (``B*H*W`` independent series, e.g. station series).
    Encoder and forecaster are separate ``nn.LSTM``s (cuDNN on GPU); the forecaster starts from the
    encoder's ``(h, c)`` and a linear head predicts the change added to each lead's anchor (see ``Forecaster``).
    """

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        hidden: int = 256,
        layers: int = 2,
        mode: Mode = "flatten",
        patch_size: int = 4,
        static: Tensor | None = None,
        **forecaster: Any,
    ) -> None:
        super().__init__(channels, **forecaster)
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
        if min(channels, height, width, hidden, layers, patch_size) < 1:
            raise ConfigError(
                f"StackedLSTMForecaster needs positive sizes, got channels={channels}, height={height}, "
                f"width={width}, hidden={hidden}, layers={layers}, patch_size={patch_size}."
            )
        check_static(static)
        if static is not None and tuple(static.shape[1:]) != (height, width):
            raise ConfigError(f"static is on a {tuple(static.shape[1:])} grid, the network on {(height, width)}.")
        self.height, self.width, self.mode = height, width, mode
        self.patch_size = {"flatten": 0, "patch": patch_size, "point": 1}[mode]
        self.static: Tensor | None
        self.register_buffer("static", None if static is None else static.detach().float().clone())
        in_channels = channels + (0 if static is None else static.shape[0]) + self.forcing_channels
        per_vector = height * width if mode == "flatten" else self.patch_size**2
        self.encoder = nn.LSTM(in_channels * per_vector, hidden, layers, batch_first=True)
        self.forecaster = nn.LSTM(in_channels * per_vector, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, channels * per_vector)
        init_residual_head(self.head)

    def encode(self, x: Tensor, state: LSTMState | None = None, forcing: Tensor | None = None) -> LSTMState | None:
        """Run the encoder LSTM over ``x`` ``[B, T, C, H, W]``; ``(h, c)``, each ``[layers, N, hidden]``."""
        self._check_frames(x, "x")
        if x.shape[1] == 0:
            return state
        _, state = self.encoder(self._to_vectors(x, forcing), state)
        return state

    def step(self, frame: Tensor, state: LSTMState | None, forcing: Tensor | None = None
             ) -> tuple[Tensor, LSTMState]:
        self._check_frames(frame, "frame")
        steps = None if forcing is None else forcing[:, None]
        output, state = self.forecaster(self._to_vectors(frame[:, None], steps), state)  # [N, 1, hidden]
        return self._from_vectors(self.head(output[:, 0]), frame.shape[0]), state

    def _check_frames(self, frames: Tensor, name: str) -> None:
        if tuple(frames.shape[-3:]) != (self.channels, self.height, self.width):
            raise ValueError(
                f"{name} frames are {tuple(frames.shape[-3:])}, the network was built for "
                f"{(self.channels, self.height, self.width)} (channels, height, width)."
            )

    def _to_vectors(self, frames: Tensor, forcing: Tensor | None) -> Tensor:
        """Frames ``[B, T, C, H, W]`` to LSTM sequences ``[N, T, F]`` (N = B, or B × patches/points)."""
        frames = with_inputs(frames, self.static, forcing)  # [B, T, C+S+F, H, W]
        if self.mode == "flatten":
            return frames.flatten(2)  # [B, T, (C+S)*H*W]
        p = self.patch_size
        frames = F.pad(frames, (0, -self.width % p, 0, -self.height % p))  # [B, T, C+S, p*H', p*W']
        patches = F.pixel_unshuffle(frames, p)  # [B, T, (C+S)*p², H', W']
        patches = patches.permute(0, 3, 4, 1, 2)  # [B, H', W', T, (C+S)*p²]
        return patches.flatten(0, 2)  # [B*H'*W', T, (C+S)*p²]

    def _from_vectors(self, vectors: Tensor, batch: int) -> Tensor:
        """Head output ``[N, C*per_vector]`` back to frames ``[B, C, H, W]``."""
        if self.mode == "flatten":
            return vectors.unflatten(1, (self.channels, self.height, self.width))  # [B, C, H, W]
        p = self.patch_size
        patches = vectors.unflatten(0, (batch, -(-self.height // p), -(-self.width // p)))  # [B, H', W', C*p²]
        patches = patches.permute(0, 3, 1, 2)  # [B, C*p², H', W']
        frames = F.pixel_shuffle(patches, p)  # [B, C, p*H', p*W']
        return frames[..., : self.height, : self.width]  # [B, C, H, W]
