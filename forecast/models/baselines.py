"""Reference forecasts without learned weights: persistence and climatology, as ``Forecaster``s."""

from __future__ import annotations

from torch import Tensor

from forecast.errors import ConfigError
from forecast.models.base import Forecaster, State, check_rollout


class Persistence(Forecaster):
    """Every lead repeats the last observed frame. No parameters; the state is ``None``."""

    def encode(self, x: Tensor, state: State = None) -> None:
        """Nothing to remember: persistence needs only the last frame, passed to :meth:`forecast`."""

    def forecast(
        self,
        state: State,
        last: Tensor,
        horizon: int,
        target: Tensor | None = None,
        teacher_forcing: float = 0.0,
    ) -> Tensor:
        """``last`` ``[B, C, H, W]`` repeated to ``[B, horizon, C, H, W]``; target/teacher forcing unused."""
        check_rollout(last, horizon, target)
        return last.unsqueeze(1).repeat(1, horizon, 1, 1, 1)  # [B, horizon, C, H, W]


class Climatology(Forecaster):
    """Every lead is the climatological mean map ``[C, H, W]`` (normalised units). No parameters."""

    def __init__(self, climatology: Tensor) -> None:
        super().__init__()
        if climatology.dim() != 3:
            raise ConfigError(f"climatology must be a [C, H, W] mean map, got shape {tuple(climatology.shape)}.")
        self.climatology: Tensor
        self.register_buffer("climatology", climatology.detach().float().clone())

    def encode(self, x: Tensor, state: State = None) -> None:
        """Nothing to remember: the forecast does not depend on the input window."""

    def forecast(
        self,
        state: State,
        last: Tensor,
        horizon: int,
        target: Tensor | None = None,
        teacher_forcing: float = 0.0,
    ) -> Tensor:
        """The map repeated to ``[B, horizon, C, H, W]``; ``last`` gives B, dtype and device only."""
        check_rollout(last, horizon, target)
        if last.shape[1:] != self.climatology.shape:
            raise ValueError(
                f"last frames are {tuple(last.shape[1:])}, the climatology is {tuple(self.climatology.shape)}."
            )
        climatology = self.climatology.to(last.dtype)
        return climatology.expand(last.shape[0], horizon, *climatology.shape).clone()  # [B, horizon, C, H, W]
