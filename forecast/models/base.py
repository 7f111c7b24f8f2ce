"""The ``Forecaster`` interface every network implements, and the one rollout loop they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

import torch
from torch import Tensor, nn

from forecast.errors import ConfigError
from forecast.models.blend import Blend

# A recurrent state is whatever a net carries between time steps: per-layer (h, c) tuples, nn.LSTM's
# (h, c) pair, or None for the stateless baselines. Nested tuples/lists of tensors, so one generic
# ``detach_state`` serves every net.
State: TypeAlias = Tensor | tuple["State", ...] | list["State"] | None
Base: TypeAlias = Literal["blend", "last"]
InputNorm: TypeAlias = Literal["none", "window"]


@dataclass
class Context:
    """What a forecast knows besides the input maps, for each of the ``T_in + output_steps`` frames of a window:
    the climatology of the frame's time and its forcing (time of year, time of day).

    ``climatology`` ``[B, T_in + output_steps, C, H, W]`` normalised; ``forcing`` ``[B, T_in + output_steps, F]``.
    """

    climatology: Tensor
    forcing: Tensor

    def to(self, *args: object, **kwargs: object) -> Context:
        return Context(self.climatology.to(*args, **kwargs), self.forcing.to(*args, **kwargs))


class Forecaster(nn.Module):
    """Maps an input window ``[B, T_in, C, H, W]`` (and its ``Context``) to a forecast ``[B, output_steps, C, H, W]``.

    Values are in normalised units. Learned subclasses implement :meth:`encode` (consume input frames) and
    :meth:`step` (one recurrent step from the previous frame, returning the change to add). The rollout is
    this class's: lead k is an *anchor* plus the step's change. The anchor is the previous frame ("last"),
    or, with ``base="blend"``, lead k of a learned linear blend of the input window and the climatology,
    initialised by least squares on the training windows (so the untrained net is already at least as good as
    persistence and the window mean there). With ``input_norm="window"`` the recurrent layers see each
    sample's frames minus its input-window mean (per point), so a trend that lifts the test period above
    anything seen in training does not take them out of their range.
    """

    def __init__(self, channels: int, forcing: int = 0, input_steps: int | None = None,
                 output_steps: int | None = None, base: Base = "last", input_norm: InputNorm = "none",
                 damping: Tensor | None = None) -> None:
        super().__init__()
        if base not in ("blend", "last") or input_norm not in ("none", "window"):
            raise ConfigError(f"base must be 'blend' or 'last' and input_norm 'none' or 'window'; got {base!r} and "
                              f"{input_norm!r}.")
        if base == "blend" and (input_steps is None or output_steps is None):
            raise ConfigError("base 'blend' needs the window's input_steps and output_steps.")
        self.channels, self.forcing_channels, self.input_norm = channels, forcing, input_norm
        self.blend = Blend(input_steps, output_steps, channels, damping) if base == "blend" else None

    def encode(self, x: Tensor, state: State = None, forcing: Tensor | None = None) -> State:
        """Consume input frames ``[B, T, C, H, W]`` (``forcing`` ``[B, T, F]``) from ``state``; return the new
        state. ``encode(x[:, a:], encode(x[:, :a]))`` equals ``encode(x)``."""
        raise NotImplementedError

    def step(self, frame: Tensor, state: State, forcing: Tensor | None = None) -> tuple[Tensor, State]:
        """One recurrent step from ``frame`` ``[B, C, H, W]``: the change ``[B, C, H, W]`` and the new state."""
        raise NotImplementedError

    def forecast(self, state: State, last: Tensor, output_steps: int, base: Tensor | None = None,
                 forcing: Tensor | None = None, target: Tensor | None = None, teacher_forcing: float = 0.0,
                 center: Tensor | None = None) -> Tensor:
        """Roll out ``output_steps`` leads ``[B, output_steps, C, H, W]`` from ``state``.

        ``last`` is the last observed frame ``[B, C, H, W]``, the input of lead 1; ``base`` ``[B, output_steps, C, H,
        W]`` the anchors (default: each lead's input frame); ``forcing`` ``[B, output_steps, F]`` that of each step's
        input frame; ``center`` ``[B, C, H, W]`` is subtracted from every frame the layers see. The input of
        lead k+1 is the prediction at lead k or, per sample with probability ``teacher_forcing``, the true
        frame ``target[:, k]`` (``target``: ``[B, >= output_steps - 1, C, H, W]``; pass it only when training).
        """
        check_rollout(last, output_steps, target)
        previous, leads = last, []
        for lead in range(output_steps):
            seen = previous if center is None else previous - center
            change, state = self.step(seen, state, None if forcing is None else forcing[:, lead])
            prediction = (previous if base is None else base[:, lead]) + change
            leads.append(prediction)
            if lead + 1 < output_steps:
                previous = next_input(prediction, target, lead, teacher_forcing)
        return torch.stack(leads, dim=1)  # [B, output_steps, C, H, W]

    def forward(self, x: Tensor, output_steps: int, context: Context | None = None, target: Tensor | None = None,
                teacher_forcing: float = 0.0) -> Tensor:
        """Forecast ``[B, output_steps, C, H, W]`` from the input window ``x`` ``[B, T_in, C, H, W]``."""
        steps = x.shape[1]
        forcing = None if context is None or not self.forcing_channels else context.forcing
        if self.forcing_channels and (forcing is None or forcing.shape[-1] != self.forcing_channels):
            raise ValueError(f"the network takes {self.forcing_channels} forcing values per frame; the context has "
                             f"{None if forcing is None else forcing.shape[-1]}.")
        base = None
        if self.blend is not None:
            if context is None:
                raise ValueError("a blended forecaster needs the window's Context (its climatology).")
            base = self.blend(x, context.climatology, output_steps)
        center = self.center_of(x)
        seen = x if center is None else x - center[:, None]
        state = self.encode(seen, forcing=None if forcing is None else forcing[:, :steps])
        rollout_forcing = None if forcing is None else forcing[:, steps - 1: steps - 1 + output_steps]
        return self.forecast(state, x[:, -1], output_steps, base, rollout_forcing, target, teacher_forcing, center)

    def center_of(self, x: Tensor) -> Tensor | None:
        """What ``input_norm`` subtracts from every frame the layers see: the input-window mean ``[B, C, H, W]``."""
        return x.mean(dim=1) if self.input_norm == "window" else None

    @staticmethod
    def detach_state(state: State) -> State:
        """Cut the autograd graph behind ``state`` (truncated BPTT); same structure, same values."""
        if state is None:
            return None
        if isinstance(state, Tensor):
            return state.detach()
        return type(state)(Forecaster.detach_state(part) for part in state)


def with_inputs(frames: Tensor, static: Tensor | None, forcing: Tensor | None) -> Tensor:
    """Frames ``[..., C, H, W]`` with the static maps ``[S, H, W]`` and the forcing ``[..., F]`` (as constant
    maps) appended along channels: ``[..., C+S+F, H, W]``."""
    parts = [frames]
    if static is not None:
        parts.append(static.to(frames.dtype).expand(*frames.shape[:-3], *static.shape))
    if forcing is not None:
        parts.append(forcing.to(frames.dtype)[..., None, None].expand(*forcing.shape, *frames.shape[-2:]))
    return torch.cat(parts, dim=-3) if len(parts) > 1 else frames


def check_rollout(last: Tensor, output_steps: int, target: Tensor | None) -> None:
    """Reject a rollout request whose shapes cannot work, before any compute."""
    if output_steps < 1:
        raise ValueError(f"output_steps must be at least 1, got {output_steps}.")
    if last.dim() != 4:
        raise ValueError(f"last must be one frame [B, C, H, W], got shape {tuple(last.shape)}.")
    if target is not None and (
        target.dim() != 5 or target.shape[1] < output_steps - 1 or target.shape[2:] != last.shape[1:]
    ):
        raise ValueError(
            f"target must be [B, >= {output_steps - 1}, {', '.join(map(str, last.shape[1:]))}], "
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

    The head predicts the change from the anchor (the previous frame or the blend), so the untrained net is
    (almost) that anchor, a strong baseline: a short training budget then improves on it instead of first
    having to learn the identity. Not exactly zero: a zero head would pass no gradient back to the
    recurrent layers.
    """
    with torch.no_grad():
        head.weight.mul_(scale)
        if head.bias is not None:
            head.bias.zero_()
