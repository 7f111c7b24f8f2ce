"""Convolutional recurrent cells: ConvLSTM (fused gate convolution) and ConvGRU, every weight used."""

from __future__ import annotations

import math
from typing import Literal, TypeAlias

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from forecast.errors import ConfigError

Norm: TypeAlias = Literal["group", "layer"] | None
CellState: TypeAlias = tuple[Tensor, ...]



def _check_sizes(in_channels: int, hidden_channels: int, kernel_size: int) -> None:
    if in_channels < 1 or hidden_channels < 1:
        raise ConfigError(
            f"A recurrent cell needs in_channels >= 1 and hidden_channels >= 1, "
            f"got {in_channels} and {hidden_channels}."
        )
    if kernel_size < 1 or kernel_size % 2 == 0:
        # An odd kernel keeps 'same' padding symmetric, so a frame is not shifted by half a cell.
        raise ConfigError(f"kernel_size must be a positive odd number, got {kernel_size}.")


def _gate_norm(norm: Norm, hidden_channels: int) -> nn.GroupNorm | None:
    """Normalisation of the ``4*hidden`` gate pre-activations, each gate's channels normalised apart.

    "layer": one group per gate, i.e. layer normalisation of each gate as in Ba et al. 2016
    (https://arxiv.org/abs/1607.06450), over channels and grid points. "group": up to 8 groups per
    gate (32 in all for 64 hidden channels, the default of Wu & He 2018, https://arxiv.org/abs/1803.08494).
    """
    if norm is None:
        return None
    if norm == "layer":
        return nn.GroupNorm(4, 4 * hidden_channels)
    if norm == "group":
        return nn.GroupNorm(4 * math.gcd(hidden_channels, 8), 4 * hidden_channels)
    raise ConfigError(f"norm must be None, 'group' or 'layer', got {norm!r}.")


class RecurrentCell(nn.Module):
    """What the stacks need of a cell: a fused step, a batched input projection and a projected scan.

    Subclasses implement ``forward`` (one step from a frame), ``input_projection`` (the x-part of the
    pre-activations of a whole sequence) and ``_step`` (one step from a projected x-part, given the
    recurrent weights returned by ``_recurrent_weights``). Convolutions pad with zeros, except along
    longitude on a ``periodic`` (global) grid, where the last column's neighbour is the first.
    """

    padding: int
    periodic: bool

    def _conv(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """'Same' convolution: zero padding in latitude, circular in longitude when periodic."""
        if not self.periodic or not self.padding:
            return F.conv2d(x, weight, bias, padding=self.padding)
        x = F.pad(x, (self.padding, self.padding, 0, 0), mode="circular")  # [..., H, W + 2p]
        return F.conv2d(x, weight, bias, padding=(self.padding, 0))

    def step_projected(self, x_proj: Tensor, state: CellState | None = None) -> CellState:
        """One step from a precomputed x-part ``[B, gates*hidden, H, W]`` (a time slice of ``input_projection``)."""
        return self._step(x_proj, state, *self._recurrent_weights())

    def scan(self, x_proj: Tensor, state: CellState | None = None) -> tuple[list[Tensor], CellState | None]:
        """Recurrence over a projected sequence ``[B, T, gates*hidden, H, W]``.

        Returns the hidden states ``T x [B, hidden, H, W]`` and the final state. Weights are sliced and
        time steps split once per sequence (``unbind``), not indexed per step: the backward of each
        index or slice allocates and zeroes a gradient the size of the whole tensor, which at
        WeatherBench size cost ~8% of a training step on CPU.
        """
        weights = self._recurrent_weights()
        hidden = []
        for x_t in x_proj.unbind(1):  # T x [B, gates*hidden, H, W]
            state = self._step(x_t, state, *weights)
            hidden.append(state[0])
        return hidden, state

    def _recurrent_weights(self) -> tuple[Tensor, ...]:
        raise NotImplementedError

    def _step(self, x_proj: Tensor, state: CellState | None, *weights: Tensor) -> CellState:
        raise NotImplementedError


class ConvLSTMCell(RecurrentCell):
    """ConvLSTM cell of Shi et al. 2015 (https://arxiv.org/abs/1506.04214) with one fused convolution.

    One ``Conv2d`` over ``cat([x, h])`` yields the pre-activations of all four gates, ordered
    i, f, g, o along channels; then ``i, f, o = sigmoid``, ``g = tanh``,
    ``c_t = f*c_{t-1} + i*g``, ``h_t = o*tanh(c_t)``. Peephole terms (``w_ci*c_{t-1}`` into i,
    ``w_cf*c_{t-1}`` into f, ``w_co*c_t`` into o) and a norm of the pre-activations are optional.
    Tensors: ``x`` ``[B, C_in, H, W]``; ``h``, ``c`` ``[B, hidden, H, W]``.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        kernel_size: int = 3,
        peephole: bool = False,
        norm: Norm = None,
        forget_bias: float = 1.0,
        periodic: bool = False,
    ) -> None:
        super().__init__()
        _check_sizes(in_channels, hidden_channels, kernel_size)
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.padding = kernel_size // 2
        self.periodic = periodic
        self.norm = _gate_norm(norm, hidden_channels)
        # With a norm, a conv bias would be normalised away (the per-gate mean is subtracted): the gate
        # bias then lives in the norm's affine shift instead, so every parameter stays in use.
        self.conv = nn.Conv2d(
            in_channels + hidden_channels,
            4 * hidden_channels,
            kernel_size,
            padding=self.padding,
            bias=self.norm is None,
        )
        # Peephole weights (w_ci, w_cf, w_co) per channel, [3, hidden, 1, 1], instead of the paper's
        # per-position [hidden, H, W]: the cell then works on any grid size (patching, padding,
        # training and inference grids differ) and the weights do not grow with the grid.
        self.peephole = nn.Parameter(torch.zeros(3, hidden_channels, 1, 1)) if peephole else None
        self.reset_gate_bias(forget_bias)

    @property
    def gate_bias(self) -> Tensor:
        """The ``[4*hidden]`` bias added to the gate pre-activations (i, f, g, o)."""
        return self.conv.bias if self.norm is None else self.norm.bias

    def reset_gate_bias(self, forget_bias: float = 1.0) -> None:
        """Forget bias ``forget_bias``, other gate biases 0.

        Jozefowicz et al. 2015 (https://proceedings.mlr.press/v37/jozefowicz15.html): a forget bias
        of 1 starts the cell near remembering, so gradients flow through c over many steps.
        """
        hidden = self.hidden_channels
        with torch.no_grad():
            self.gate_bias.zero_()
            self.gate_bias[hidden : 2 * hidden] = forget_bias

    def forward(self, x: Tensor, state: CellState | None = None) -> CellState:
        """One step: ``x`` ``[B, C_in, H, W]`` and ``(h, c)`` to the new ``(h, c)``."""
        if state is None:
            return self.step_projected(self.input_projection(x.unsqueeze(1)).squeeze(1), None)
        h, c = state
        pre = self._conv(torch.cat([x, h], dim=1), self.conv.weight, self.conv.bias)  # [B, 4*hidden, H, W]
        return self._gates(pre, c)

    def input_projection(self, x_seq: Tensor) -> Tensor:
        """x-part of the fused convolution for all steps: ``[B, T, C_in, H, W]`` → ``[B, T, 4*hidden, H, W]``.

        One batched convolution over ``B*T`` frames, as cuDNN's LSTM runs its input projection for
        the whole sequence before the recurrence. Uses the x-slice of the fused weight and the bias.
        """
        weight = self.conv.weight[:, : self.in_channels]
        frames = x_seq.flatten(0, 1)  # [B*T, C_in, H, W]
        pre = self._conv(frames, weight, self.conv.bias)  # [B*T, 4*hidden, H, W]
        return pre.unflatten(0, x_seq.shape[:2])  # [B, T, 4*hidden, H, W]

    def _recurrent_weights(self) -> tuple[Tensor]:
        """The h-slice of the fused weight, ``[4*hidden, hidden, k, k]``."""
        # contiguous: a strided slice would be copied by every convolution call that uses it
        return (self.conv.weight[:, self.in_channels :].contiguous(),)

    def _step(self, x_proj: Tensor, state: CellState | None, *weights: Tensor) -> CellState:
        """One step from the x-part ``[B, 4*hidden, H, W]``: add the h-part (no bias), apply the gates."""
        if state is None:
            # h = 0 adds nothing to the pre-activations; c = 0.
            return self._gates(x_proj, torch.zeros_like(x_proj[:, : self.hidden_channels]))
        h, c = state
        pre = x_proj + self._conv(h, weights[0], None)  # [B, 4*hidden, H, W]
        return self._gates(pre, c)

    def _gates(self, pre: Tensor, c: Tensor) -> CellState:
        """Gate equations, shared by both paths: pre-activations ``[B, 4*hidden, H, W]`` and c → (h, c)."""
        if self.norm is not None:
            pre = self.norm(pre)
        i, f, g, o = pre.chunk(4, dim=1)  # each [B, hidden, H, W]
        if self.peephole is not None:
            w_ci, w_cf, w_co = self.peephole  # each [hidden, 1, 1]
            i = i + w_ci * c
            f = f + w_cf * c
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        if self.peephole is not None:
            o = o + w_co * c
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ConvGRUCell(RecurrentCell):
    """Convolutional GRU cell of Ballas et al. 2015 (https://arxiv.org/abs/1511.06432).

    ``z, r = sigmoid(W_zr*x + U_zr*h)``, ``n = tanh(W_n*x + U_n*(r∘h))``, ``h_t = (1-z)∘h + z∘n``;
    ``W_*`` and ``U_*`` are convolutions with 'same' padding. The state is the 1-tuple ``(h,)``,
    ``h`` ``[B, hidden, H, W]``, so stacks treat both cells alike (``state[0]`` is the output).
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3, periodic: bool = False) -> None:
        super().__init__()
        _check_sizes(in_channels, hidden_channels, kernel_size)
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.padding = kernel_size // 2
        self.periodic = periodic
        # x-part of all three pre-activations (z, r, n) as one conv, so a whole sequence can be
        # projected in one batched call (see ConvLSTMCell.input_projection).
        self.conv_x = nn.Conv2d(in_channels, 3 * hidden_channels, kernel_size, padding=self.padding)
        self.conv_h_zr = nn.Conv2d(hidden_channels, 2 * hidden_channels, kernel_size, padding=self.padding, bias=False)
        self.conv_h_n = nn.Conv2d(hidden_channels, hidden_channels, kernel_size, padding=self.padding, bias=False)

    def forward(self, x: Tensor, state: CellState | None = None) -> CellState:
        """One step: ``x`` ``[B, C_in, H, W]`` and ``(h,)`` to the new ``(h,)``."""
        return self.step_projected(self._conv(x, self.conv_x.weight, self.conv_x.bias), state)

    def input_projection(self, x_seq: Tensor) -> Tensor:
        """x-part for all steps: ``[B, T, C_in, H, W]`` → ``[B, T, 3*hidden, H, W]`` in one conv."""
        pre = self._conv(x_seq.flatten(0, 1), self.conv_x.weight, self.conv_x.bias)  # [B*T, 3*hidden, H, W]
        return pre.unflatten(0, x_seq.shape[:2])  # [B, T, 3*hidden, H, W]

    def _recurrent_weights(self) -> tuple[()]:
        return ()  # the U-convolutions are whole modules: nothing to slice

    def _step(self, x_proj: Tensor, state: CellState | None, *weights: Tensor) -> CellState:
        """One step from the x-part ``[B, 3*hidden, H, W]``; returns ``(h,)``."""
        x_zr, x_n = x_proj.split([2 * self.hidden_channels, self.hidden_channels], dim=1)
        if state is None:
            # h = 0: the U-convolutions add nothing and (1-z)*h vanishes.
            z = torch.sigmoid(x_zr[:, : self.hidden_channels])
            return (z * torch.tanh(x_n),)
        (h,) = state
        z, r = torch.sigmoid(x_zr + self._conv(h, self.conv_h_zr.weight, None)).chunk(2, dim=1)  # [B, hidden, H, W]
        n = torch.tanh(x_n + self._conv(r * h, self.conv_h_n.weight, None))
        return (h + z * (n - h),)


def compile_cell(cell: RecurrentCell, **options: object) -> None:
    """Compile a cell's two step functions (``forward`` and the projected ``_step``) in place.

    The cell rather than the recurrent loop: ``torch.compile`` of the loop unrolls it over time (long
    compiles, one graph per sequence length). ``options`` go to ``torch.compile``.
    """
    cell.forward = torch.compile(cell.forward, **options)  # type: ignore[method-assign]
    cell._step = torch.compile(cell._step, **options)  # type: ignore[method-assign]
