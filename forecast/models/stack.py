"""A stack of convolutional recurrent cells: whole-sequence runs (layer by layer) and single steps."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal, TypeAlias

import torch
from torch import Tensor, nn

from forecast.errors import ConfigError
from forecast.models.cells import CellState, ConvGRUCell, ConvLSTMCell, Norm, compile_cell

CellKind: TypeAlias = Literal["convlstm", "convgru"]
StackState: TypeAlias = list[CellState]
CELL_KINDS = ("convlstm", "convgru")


class ConvRecurrentStack(nn.Module):
    """Cells stacked in depth: layer l's hidden state ``[B, hidden[l], H, W]`` is layer l+1's input."""

    def __init__(
        self,
        in_channels: int,
        hidden: Sequence[int],
        kernel_size: int = 3,
        cell: CellKind = "convlstm",
        peephole: bool = False,
        norm: Norm = None,
        periodic: bool = False,
    ) -> None:
        super().__init__()
        if cell not in CELL_KINDS:
            raise ConfigError(f"cell must be one of {', '.join(CELL_KINDS)}, got {cell!r}.")
        if cell == "convgru" and (peephole or norm is not None):
            raise ConfigError("peephole and norm apply to 'convlstm' cells only; drop them for 'convgru'.")
        sizes = [in_channels, *hidden]
        self.cells = nn.ModuleList(
            ConvLSTMCell(c_in, c_out, kernel_size, peephole=peephole, norm=norm, periodic=periodic)
            if cell == "convlstm"
            else ConvGRUCell(c_in, c_out, kernel_size, periodic=periodic)
            for c_in, c_out in itertools.pairwise(sizes)
        )

    def run(self, x: Tensor, state: StackState | None = None) -> StackState:
        """Consume a sequence ``[B, T, C_in, H, W]``; return the final per-layer states.

        Layer-major order: layer l runs over all T steps before layer l+1 starts. It computes the same
        numbers as step-major order (layer l+1 at step t needs only layer l at step t), and makes every
        layer's inputs known in advance, so each layer's input convolution runs once over all ``B*T``
        frames (``input_projection``) and only the h-convolution stays inside the loop, as cuDNN's
        LSTM does (https://docs.nvidia.com/deeplearning/cudnn/latest/api/cudnn-adv-library.html).
        """
        states: StackState = []
        for layer, cell in enumerate(self.cells):
            layer_state = None if state is None else state[layer]
            hidden, layer_state = cell.scan(cell.input_projection(x), layer_state)
            states.append(layer_state)
            if layer + 1 < len(self.cells):  # the top layer's sequence feeds nothing
                x = torch.stack(hidden, dim=1)  # [B, T, hidden, H, W]
        return states

    def step(self, x: Tensor, state: StackState | None = None) -> StackState:
        """One time step through every layer: ``x`` ``[B, C_in, H, W]``; returns the new per-layer states."""
        states: StackState = []
        for layer, cell in enumerate(self.cells):
            layer_state = cell(x, None if state is None else state[layer])
            states.append(layer_state)
            x = layer_state[0]
        return states

    def compile_cells(self, **options: object) -> None:
        """``torch.compile`` each cell's step functions (not the loop, which would be unrolled)."""
        for cell in self.cells:
            compile_cell(cell, **options)
