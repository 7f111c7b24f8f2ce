"""Every network behind one interface: shapes, gradients, chunked encoding, scheduled sampling, factory errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

from forecast.errors import ConfigError
from forecast.models import Context, Forecaster, Reference, build_network

B, T_IN, HORIZON, C, H, W = 2, 3, 3, 2, 8, 12

TRAINABLE: dict[str, tuple[str, dict[str, Any]]] = {
    "convlstm": ("convlstm", {"hidden": (4, 5)}),
    "convlstm_peephole_norm": ("convlstm", {"hidden": (4, 4), "peephole": True, "norm": "group"}),
    "convlstm_patch": ("convlstm", {"hidden": (4,), "patch_size": 2, "kernel_size": 1}),
    "convgru": ("convgru", {"hidden": (4, 5)}),
    "stacked_lstm_flatten": ("stacked_lstm", {"hidden": 8, "mode": "flatten"}),
    "stacked_lstm_patch": ("stacked_lstm", {"hidden": 8, "mode": "patch", "patch_size": 3}),
    "stacked_lstm_point": ("stacked_lstm", {"hidden": 8, "mode": "point"}),
}


def frames(*shape: int, seed: int = 0) -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def tensors_in(state: object) -> list[Tensor]:
    """The tensors of a nested state, depth first."""
    if isinstance(state, Tensor):
        return [state]
    if isinstance(state, tuple | list):
        return [leaf for part in state for leaf in tensors_in(part)]
    return []


def build(name: str, height: int = H, width: int = W, static: Tensor | None = None) -> Forecaster:
    torch.manual_seed(0)
    kind, options = TRAINABLE[name]
    return build_network(kind, channels=C, height=height, width=width, static=static, **options)


@pytest.fixture(params=list(TRAINABLE))
def name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.parametrize("with_static", [False, True])
def test_output_shape_on_odd_grid(name: str, with_static: bool) -> None:
    height, width = 37, 49  # not a multiple of any patch size: padded, then cropped back
    static = frames(3, height, width, seed=5) if with_static else None
    net = build(name, height, width, static)
    with torch.no_grad():
        y = net(frames(B, T_IN, C, height, width), HORIZON)
    assert y.shape == (B, HORIZON, C, height, width)


def test_static_fields_change_the_forecast() -> None:
    static = frames(1, H, W, seed=5)
    x = frames(B, T_IN, C, H, W)
    with torch.no_grad():
        y = build("convlstm_patch", static=static)(x, HORIZON)
        y_other = build("convlstm_patch", static=-static)(x, HORIZON)
    assert not torch.allclose(y, y_other)


def test_untrained_network_starts_near_persistence(name: str) -> None:
    x = frames(B, T_IN, C, H, W)
    with torch.no_grad():
        y = build(name)(x, HORIZON)
    persistence = x[:, -1:].expand_as(y)
    assert (y - persistence).abs().max() < 0.1  # the residual head starts small


def test_gradient_reaches_first_input_step(name: str) -> None:
    x = frames(B, T_IN, C, H, W).requires_grad_()
    y = build(name)(x, HORIZON)
    y[:, -1].pow(2).sum().backward()
    assert x.grad is not None
    assert x.grad[:, 0].abs().sum() > 0


def test_every_parameter_receives_gradient(name: str) -> None:
    static = frames(2, H, W, seed=5)
    net = build(name, static=static)
    x = frames(B, T_IN, C, H, W)
    y = net(x, HORIZON)
    (y - frames(*y.shape, seed=3)).pow(2).mean().backward()
    for parameter_name, parameter in net.named_parameters():
        assert parameter.grad is not None, f"{parameter_name} received no gradient"
        assert parameter.grad.abs().sum() > 0, f"{parameter_name} received a zero gradient"


def test_chunked_encode_equals_whole_encode(name: str) -> None:
    net = build(name).double()
    x = frames(B, 5, C, H, W).double()
    whole = net.encode(x)
    chunked = None
    for chunk in x.split(2, dim=1):  # chunks of 2, 2, 1 steps, as truncated BPTT runs them
        chunked = net.detach_state(net.encode(chunk, chunked))
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-12)


def test_detach_state_keeps_values_and_cuts_graph(name: str) -> None:
    net = build(name)
    state = net.encode(frames(B, T_IN, C, H, W))
    detached = net.detach_state(state)
    leaves = tensors_in(detached)
    assert leaves and not any(leaf.requires_grad for leaf in leaves)
    torch.testing.assert_close(detached, state)


def test_teacher_forcing_one_feeds_the_truth(name: str) -> None:
    net = build(name)
    x = frames(B, T_IN, C, H, W)
    target = frames(B, HORIZON, C, H, W, seed=1)
    changed = target.clone()
    changed[:, 0] += 1.0
    with torch.no_grad():
        forced = net(x, HORIZON, target=target, teacher_forcing=1.0)
        forced_changed = net(x, HORIZON, target=changed, teacher_forcing=1.0)
        free = net(x, HORIZON, target=target, teacher_forcing=0.0)
        free_changed = net(x, HORIZON, target=changed, teacher_forcing=0.0)
        no_target = net(x, HORIZON)
    torch.testing.assert_close(forced[:, 0], forced_changed[:, 0])  # lead 1 sees only the input window
    assert (forced[:, 1] - forced_changed[:, 1]).abs().min() > 0.5  # lead 2's input is target[:, 0]
    torch.testing.assert_close(free, free_changed, rtol=0, atol=0)
    torch.testing.assert_close(free, no_target, rtol=0, atol=0)


def test_scheduled_sampling_draws_per_sample_and_reproducibly() -> None:
    net = build("convlstm")
    batch = 32
    x = frames(batch, T_IN, C, H, W)
    target = frames(batch, HORIZON, C, H, W, seed=1)
    changed = target.clone()
    changed[:, 0] += 1.0
    with torch.no_grad():
        torch.manual_seed(7)
        y = net(x, HORIZON, target=target, teacher_forcing=0.5)
        torch.manual_seed(7)
        y_changed = net(x, HORIZON, target=changed, teacher_forcing=0.5)
        torch.manual_seed(7)
        y_again = net(x, HORIZON, target=target, teacher_forcing=0.5)
    torch.testing.assert_close(y, y_again, rtol=0, atol=0)
    took_truth = (y[:, 1] - y_changed[:, 1]).flatten(1).abs().amax(1) > 0  # [batch]
    assert 0 < int(took_truth.sum()) < batch


def test_gradient_clipping_bounds_global_norm(name: str) -> None:
    net = build(name)
    y = net(frames(B, T_IN, C, H, W), HORIZON)
    (100 * y).pow(2).sum().backward()
    parameters = list(net.parameters())
    torch.nn.utils.clip_grad_norm_(parameters, 0.5)
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in parameters]))
    assert total <= 0.5 + 1e-6


def test_channels_last_gives_same_forecast() -> None:
    net = build("convlstm_peephole_norm")
    x = frames(B, T_IN, C, H, W)
    with torch.no_grad():
        expected = net(x, HORIZON)
        got = net.to(memory_format=torch.channels_last)(x, HORIZON)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_persistence_repeats_last_frame() -> None:
    x = frames(B, T_IN, C, H, W)
    net = build_network("persistence", channels=C, height=H, width=W)
    y = net(x, HORIZON)
    torch.testing.assert_close(y, x[:, -1:].expand(B, HORIZON, C, H, W), rtol=0, atol=0)
    assert isinstance(net, Reference) and not list(net.parameters())


def test_climatology_returns_the_map_of_each_valid_time() -> None:
    clim = frames(B, T_IN + HORIZON, C, H, W, seed=4)
    net = build_network("climatology", channels=C, height=H, width=W)
    y = net(frames(B, T_IN, C, H, W), HORIZON, Context(clim, torch.zeros(B, T_IN + HORIZON, 0)))
    torch.testing.assert_close(y, clim[:, T_IN:], rtol=0, atol=0)


def test_damped_persistence_damps_the_last_anomaly_per_point_and_lead() -> None:
    clim = frames(B, T_IN + HORIZON, C, H, W, seed=4)
    damping = torch.rand(HORIZON, C, H, W, generator=torch.Generator().manual_seed(2))
    x = frames(B, T_IN, C, H, W)
    net = build_network("damped_persistence", channels=C, height=H, width=W, damping=damping)
    y = net(x, HORIZON, Context(clim, torch.zeros(B, T_IN + HORIZON, 0)))
    anomaly = x[:, -1] - clim[:, T_IN - 1]
    torch.testing.assert_close(y, clim[:, T_IN:] + damping[None] * anomaly[:, None])


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("transformer", {}, "'transformer'.*valid kinds: convlstm, convgru, stacked_lstm"),
        ("convlstm", {"hiden": (4,)}, "'hiden'.*'convlstm'.*valid options: hidden, kernel_size"),
        ("convgru", {"peephole": True}, "'peephole'.*'convgru'.*valid options: hidden"),
        ("persistence", {"hidden": 4}, "'hidden'.*'persistence'.*valid options: none"),
        ("damped_persistence", {}, "needs its damping"),
        ("convlstm", {"kernel_size": 4}, "kernel_size must be a positive odd number"),
        ("convlstm", {"hidden": ()}, "non-empty hidden"),
        ("convlstm", {"norm": "batch"}, "norm must be"),
        ("stacked_lstm", {"mode": "grid"}, "mode must be one of flatten, patch, point"),
    ],
)
def test_build_network_rejects_bad_config(kind: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_network(kind, channels=C, height=H, width=W, **options)


def test_build_network_rejects_static_on_other_grid() -> None:
    with pytest.raises(ConfigError, match="static"):
        build_network("convlstm", channels=C, height=H, width=W, static=frames(1, H + 1, W))
