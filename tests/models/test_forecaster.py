"""What the shared forecaster machinery promises: periodic longitudes, the least-squares blend, forcing, and
window-relative inputs."""

from __future__ import annotations

import torch

from forecast.models import Blend, Context, build_network
from forecast.models.baselines import reference_forecasts

B, T_IN, T_OUT, C, H, W = 3, 4, 3, 2, 6, 16


def frames(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def context(seed: int = 1, forcing: int = 0) -> Context:
    return Context(frames(B, T_IN + T_OUT, C, H, W, seed=seed), frames(B, T_IN + T_OUT, forcing, seed=seed + 1))


def test_a_periodic_network_wraps_round_the_globe_in_longitude_only() -> None:
    torch.manual_seed(0)
    periodic = build_network("convlstm", channels=C, height=H, width=W, periodic=True, hidden=(4,), kernel_size=3)
    x = frames(B, T_IN, C, H, W)
    with torch.no_grad():
        periodic.head.weight.mul_(100)  # make the recurrent layers' share of the forecast large
        shifted = periodic(torch.roll(x, 5, dims=-1), T_OUT)
        expected = torch.roll(periodic(x, T_OUT), 5, dims=-1)
    torch.testing.assert_close(shifted, expected, rtol=1e-4, atol=1e-5)  # a seam would break this
    regional = build_network("convlstm", channels=C, height=H, width=W, hidden=(4,), kernel_size=3)
    regional.load_state_dict(periodic.state_dict())
    with torch.no_grad():
        edge = regional(torch.roll(x, 5, dims=-1), T_OUT) - torch.roll(regional(x, T_OUT), 5, dims=-1)
        lat_roll = periodic(torch.roll(x, 2, dims=-2), T_OUT) - torch.roll(periodic(x, T_OUT), 2, dims=-2)
    assert edge.abs().max() > 1e-3  # zero padding: the grid's edges are edges
    assert lat_roll.abs().max() > 1e-3  # latitude is never wrapped


def test_the_least_squares_blend_is_at_least_as_good_as_every_reference_on_its_data() -> None:
    x, ctx = frames(64, T_IN, C, H, W), Context(frames(64, T_IN + T_OUT, C, H, W, seed=3), torch.zeros(64, 7, 0))
    damping = torch.rand(T_OUT, C, H, W, generator=torch.Generator().manual_seed(4))
    # the truth: mostly the window mean, some persistence, plus noise
    y = (0.7 * x.mean(1, keepdim=True) + 0.3 * x[:, -1:]).expand(-1, T_OUT, -1, -1, -1) + 0.1 * frames(
        64, T_OUT, C, H, W, seed=9)
    blend = Blend(T_IN, T_OUT, C, damping)
    weights = torch.ones(64, C, H, W)
    gram, rhs, squares = blend.normal_equations(x, ctx.climatology, y, weights)
    blend.fit(gram, rhs, squares)
    with torch.no_grad():
        mse = ((blend(x, ctx.climatology, T_OUT) - y) ** 2).mean()
        references = reference_forecasts(x, ctx, damping, T_OUT)
    for name, forecast in references.items():
        assert mse <= ((forecast - y) ** 2).mean(), name
    recovered = blend.weight[0, 0, :T_IN]
    torch.testing.assert_close(recovered, torch.tensor([0.175, 0.175, 0.175, 0.475]), atol=0.02, rtol=0)


def test_a_blended_network_starts_from_its_blend() -> None:
    torch.manual_seed(0)
    net = build_network("convlstm", channels=C, height=H, width=W, hidden=(4,), input_steps=T_IN,
                        output_steps=T_OUT, base="blend")
    ctx, x = context(), frames(B, T_IN, C, H, W)
    with torch.no_grad():
        net.blend.weight.zero_()
        net.blend.weight[:, :, T_IN] = 1.0  # the blend is the climatology of the valid time
        y = net(x, T_OUT, ctx)
    assert (y - ctx.climatology[:, T_IN:]).abs().max() < 0.1  # plus the small untrained residual


def test_forcing_reaches_the_forecast() -> None:
    torch.manual_seed(0)
    net = build_network("convlstm", channels=C, height=H, width=W, forcing=2, hidden=(4,))
    x = frames(B, T_IN, C, H, W)
    with torch.no_grad():
        net.head.weight.mul_(100)
        a, b = net(x, T_OUT, context(forcing=2)), net(x, T_OUT, context(seed=5, forcing=2))
    assert (a - b).abs().max() > 1e-3


def test_window_relative_inputs_make_the_network_blind_to_a_level_shift() -> None:
    torch.manual_seed(0)
    net = build_network("convlstm", channels=C, height=H, width=W, hidden=(4,), input_norm="window")
    x, shift = frames(B, T_IN, C, H, W), frames(1, 1, C, H, W, seed=6)
    with torch.no_grad():
        net.head.weight.mul_(100)
        torch.testing.assert_close(net(x + shift, T_OUT), net(x, T_OUT) + shift, rtol=1e-4, atol=1e-4)
