"""The ``Forecaster`` interface every network implements: encode the input window, roll out leads."""

from __future__ import annotations

from typing import TypeAlias

import torch
from torch import Tensor, nn

from forecast.errors import ConfigError

# A recurrent state is whatever a net carries between time steps: per-layer (h, c) tuples, nn.LSTM's
# (h, c) pair, or None for the stateless baselines. Nested tuples/lists of tensors, so one generic
# ``detach_state`` serves every net.
State: TypeAlias = Tensor | tuple["State", ...] | list["State"] | None


class Forecaster(nn.Module):
    """Maps an input window ``[B, T_in, C, H, W]`` to a forecast ``[B, horizon, C, H, W]``.

    Values are in normalised units. Subclasses implement :meth:`encode` and :meth:`forecast`; the
    split lets a training loop run truncated BPTT over chunks of a long input (``encode`` on each
    chunk, carrying :meth:`detach_state` between them) before rolling out the forecast.
    """

    def encode(self, x: Tensor, state: State = None) -> State:
        """Consume input frames ``[B, T, C, H, W]`` starting from ``state``; return the new state.

        ``encode(x[:, a:], encode(x[:, :a]))`` equals ``encode(x)``.
        """
        raise NotImplementedError

    def forecast(
        self,
        state: State,
        last: Tensor,
        horizon: int,
        target: Tensor | None = None,
        teacher_forcing: float = 0.0,
    ) -> Tensor:
        """Roll out ``horizon`` leads ``[B, horizon, C, H, W]`` from ``state``.

        ``last`` is the last observed frame ``[B, C, H, W]``, the input for lead 1. The input for
        lead k+1 is the prediction at lead k or, per sample with probability ``teacher_forcing``,
        the true frame ``target[:, k]`` (``target``: ``[B, >= horizon - 1, C, H, W]``; pass it only
        when training).
        """
        raise NotImplementedError

    def forward(
        self,
        x: Tensor,
        horizon: int,
        target: Tensor | None = None,
        teacher_forcing: float = 0.0,
    ) -> Tensor:
        """Forecast ``[B, horizon, C, H, W]`` from the input window ``x``: ``[B, T_in, C, H, W]``."""
        return self.forecast(self.encode(x), x[:, -1], horizon, target, teacher_forcing)

    @staticmethod
    def detach_state(state: State) -> State:
        """Cut the autograd graph behind ``state`` (truncated BPTT); same structure, same values."""
        if state is None:
            return None
        if isinstance(state, Tensor):
            return state.detach()
        return type(state)(Forecaster.detach_state(part) for part in state)


def check_rollout(last: Tensor, horizon: int, target: Tensor | None) -> None:
    """Reject a rollout request whose shapes cannot work, before any compute."""
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}.")
    if last.dim() != 4:
        raise ValueError(f"last must be one frame [B, C, H, W], got shape {tuple(last.shape)}.")
    if target is not None and (
        target.dim() != 5 or target.shape[1] < horizon - 1 or target.shape[2:] != last.shape[1:]
    ):
        raise ValueError(
            f"target must be [B, >= {horizon - 1}, {', '.join(map(str, last.shape[1:]))}], "
            f"got shape {tuple(target.shape)}."
        )


def next_input(prediction: Tensor, target: Tensor | None, lead: int, teacher_forcing: float) -> Tensor:
    """Input frame ``[B, ...]`` for the lead after ``lead`` (0-based): prediction or truth.

    Scheduled sampling (Bengio et al. 2015, https://arxiv.org/abs/1506.03099): each sample takes the
    true frame ``target[:, lead]`` with probability ``teacher_forcing``. The draw uses torch's global
    RNG so a seeded run (Lightning's ``seed_everything``) is reproducible.
    """
    if target is None or teacher_forcing <= 0.0 or lead >= target.shape[1]:
        return prediction
    truth = target[:, lead].to(prediction.dtype)
    if teacher_forcing >= 1.0:
        return truth
    use_truth = torch.rand(prediction.shape[0], device=prediction.device) < teacher_forcing  # [B]
    use_truth = use_truth.reshape(-1, *([1] * (prediction.dim() - 1)))  # [B, 1, ...] to broadcast
    return torch.where(use_truth, truth, prediction)


def check_static(static: Tensor | None) -> None:
    """Static fields must be one ``[S, H, W]`` stack of maps."""
    if static is not None and static.dim() != 3:
        raise ConfigError(f"static must be a [S, H, W] tensor of fixed fields, got shape {tuple(static.shape)}.")


def init_residual_head(head: nn.Conv2d | nn.Linear, scale: float = 0.01) -> None:
    """Shrink a residual head's initial weights by ``scale`` and zero its bias.

    The head predicts the change from the previous frame, so the untrained net is (almost)
    persistence, a strong baseline at short leads: a short training budget then improves on it
    instead of first having to learn the identity. Not exactly zero: a zero head would pass no
    gradient back to the recurrent layers.
    """
    with torch.no_grad():
        head.weight.mul_(scale)
        if head.bias is not None:
            head.bias.zero_()
