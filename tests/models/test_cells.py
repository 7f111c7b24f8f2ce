"""ConvLSTM and ConvGRU cells against float64 references of their equations, and their gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from forecast.errors import ConfigError
from forecast.models.cells import ConvGRUCell, ConvLSTMCell

B, C_IN, HIDDEN, H, W = 2, 3, 4, 5, 6


def randomise(cell: nn.Module, seed: int = 0) -> nn.Module:
    """Random values in every parameter (zero peepholes or unit biases would hide mistakes)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in cell.parameters():
            parameter.copy_(0.5 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
    return cell


def lstm_reference(cell: ConvLSTMCell, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """Shi et al. 2015 written out gate by gate, from slices of the cell's fused weight (order i, f, g, o)."""
    weight, bias, pad = cell.conv.weight, cell.conv.bias, cell.padding

    def pre_activation(gate: int) -> Tensor:
        rows = slice(gate * HIDDEN, (gate + 1) * HIDDEN)
        from_x = F.conv2d(x, weight[rows, :C_IN], bias[rows], padding=pad)
        return from_x + F.conv2d(h, weight[rows, C_IN:], None, padding=pad)

    w_ci, w_cf, w_co = cell.peephole if cell.peephole is not None else torch.zeros(3, HIDDEN, 1, 1)
    i = torch.sigmoid(pre_activation(0) + w_ci * c)
    f = torch.sigmoid(pre_activation(1) + w_cf * c)
    g = torch.tanh(pre_activation(2))
    c_t = f * c + i * g
    o = torch.sigmoid(pre_activation(3) + w_co * c_t)
    return o * torch.tanh(c_t), c_t


def gru_reference(cell: ConvGRUCell, x: Tensor, h: Tensor) -> Tensor:
    """Ballas et al. 2015 written out gate by gate from the cell's convolutions."""
    pad = cell.padding
    w_x, b_x = cell.conv_x.weight, cell.conv_x.bias
    x_z = F.conv2d(x, w_x[:HIDDEN], b_x[:HIDDEN], padding=pad)
    x_r = F.conv2d(x, w_x[HIDDEN : 2 * HIDDEN], b_x[HIDDEN : 2 * HIDDEN], padding=pad)
    x_n = F.conv2d(x, w_x[2 * HIDDEN :], b_x[2 * HIDDEN :], padding=pad)
    z = torch.sigmoid(x_z + F.conv2d(h, cell.conv_h_zr.weight[:HIDDEN], padding=pad))
    r = torch.sigmoid(x_r + F.conv2d(h, cell.conv_h_zr.weight[HIDDEN:], padding=pad))
    n = torch.tanh(x_n + F.conv2d(r * h, cell.conv_h_n.weight, padding=pad))
    return (1 - z) * h + z * n


def inputs(dtype: torch.dtype = torch.float64, steps: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
    generator = torch.Generator().manual_seed(1)
    shape = (B, C_IN, H, W) if steps is None else (B, steps, C_IN, H, W)
    x = torch.randn(shape, generator=generator, dtype=dtype)
    h = torch.randn(B, HIDDEN, H, W, generator=generator, dtype=dtype)
    c = torch.randn(B, HIDDEN, H, W, generator=generator, dtype=dtype)
    return x, h, c


@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("kernel_size", [1, 3])
def test_convlstm_cell_matches_gate_equations(peephole: bool, kernel_size: int) -> None:
    cell = randomise(ConvLSTMCell(C_IN, HIDDEN, kernel_size, peephole=peephole).double())
    x, h, c = inputs()
    h_t, c_t = cell(x, (h, c))
    h_ref, c_ref = lstm_reference(cell, x, h, c)
    torch.testing.assert_close(h_t, h_ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(c_t, c_ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("peephole", [False, True])
def test_convlstm_cell_starts_from_zero_state(peephole: bool) -> None:
    cell = randomise(ConvLSTMCell(C_IN, HIDDEN, peephole=peephole).double())
    x, h, c = inputs()
    h_t, c_t = cell(x, None)
    h_ref, c_ref = lstm_reference(cell, x, torch.zeros_like(h), torch.zeros_like(c))
    torch.testing.assert_close(h_t, h_ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(c_t, c_ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("peephole", "norm"), [(False, None), (True, None), (False, "group"), (True, "layer")]
)
def test_input_projection_path_equals_fused_path(peephole: bool, norm: str | None) -> None:
    cell = randomise(ConvLSTMCell(C_IN, HIDDEN, peephole=peephole, norm=norm))
    x_seq, _, _ = inputs(torch.float32, steps=4)
    fused = projected = None
    x_proj = cell.input_projection(x_seq)
    assert x_proj.shape == (B, 4, 4 * HIDDEN, H, W)
    for t in range(x_seq.shape[1]):
        fused = cell(x_seq[:, t], fused)
        projected = cell.step_projected(x_proj[:, t], projected)
        for a, b in zip(fused, projected, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


@pytest.mark.parametrize("norm", [None, "group", "layer"])
def test_forget_gate_bias_is_one_and_other_biases_zero(norm: str | None) -> None:
    cell = ConvLSTMCell(C_IN, HIDDEN, norm=norm)
    i, f, g, o = cell.gate_bias.detach().chunk(4)
    assert torch.all(f == 1.0)
    assert torch.all(torch.cat([i, g, o]) == 0.0)
    if norm is not None:  # the gate bias lives in the norm; a conv bias would be normalised away
        assert cell.conv.bias is None


def assert_every_parameter_has_gradient(module: nn.Module) -> None:
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None, f"{name} received no gradient"
        assert parameter.grad.abs().sum() > 0, f"{name} received a zero gradient"


def weighted_loss(*tensors: Tensor) -> Tensor:
    """A loss with random weights: plain sums can cancel exactly after a norm."""
    generator = torch.Generator().manual_seed(2)
    return sum((t * torch.randn(t.shape, generator=generator)).sum() for t in tensors)  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("peephole", "norm"), [(False, None), (True, None), (False, "group"), (False, "layer"), (True, "group")]
)
def test_convlstm_cell_every_parameter_gets_gradient(peephole: bool, norm: str | None) -> None:
    cell = ConvLSTMCell(C_IN, HIDDEN, peephole=peephole, norm=norm)
    x_seq, _, _ = inputs(torch.float32, steps=2)
    # Two steps from the zero state: the h-weights and c-peepholes only act from step 2.
    state = cell(x_seq[:, 0], None)
    state = cell(x_seq[:, 1], state)
    weighted_loss(*state).backward()
    assert_every_parameter_has_gradient(cell)


def test_convgru_cell_matches_gate_equations() -> None:
    cell = randomise(ConvGRUCell(C_IN, HIDDEN).double())
    x, h, _ = inputs()
    (h_t,) = cell(x, (h,))
    torch.testing.assert_close(h_t, gru_reference(cell, x, h), rtol=0, atol=1e-6)
    (h_0,) = cell(x, None)
    torch.testing.assert_close(h_0, gru_reference(cell, x, torch.zeros_like(h)), rtol=0, atol=1e-6)


def test_convgru_cell_every_parameter_gets_gradient() -> None:
    cell = ConvGRUCell(C_IN, HIDDEN)
    x_seq, _, _ = inputs(torch.float32, steps=2)
    state = cell(x_seq[:, 0], None)
    state = cell(x_seq[:, 1], state)
    weighted_loss(*state).backward()
    assert_every_parameter_has_gradient(cell)


@pytest.mark.parametrize(
    "build",
    [
        lambda: ConvLSTMCell(C_IN, HIDDEN, kernel_size=4),
        lambda: ConvLSTMCell(C_IN, 0),
        lambda: ConvLSTMCell(C_IN, HIDDEN, norm="batch"),  # type: ignore[arg-type]
        lambda: ConvGRUCell(C_IN, HIDDEN, kernel_size=2),
    ],
)
def test_cells_reject_bad_sizes(build: object) -> None:
    with pytest.raises(ConfigError):
        build()  # type: ignore[operator]
