"""Build any network by kind name: the one place a config string becomes a ``Forecaster``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from forecast.errors import ConfigError
from forecast.models.base import Forecaster
from forecast.models.baselines import Climatology, Persistence
from forecast.models.convlstm import ConvLSTMForecaster
from forecast.models.stacked_lstm import StackedLSTMForecaster


@dataclass(frozen=True)
class _Kind:
    """How to build one kind: a builder taking the data sizes and the options, and the option names."""

    build: Callable[..., Forecaster]
    options: tuple[str, ...]


def _convlstm(cell: str) -> Callable[..., Forecaster]:
    def build(channels: int, height: int, width: int, static: Tensor | None, **options: Any) -> Forecaster:
        return ConvLSTMForecaster(channels, static=static, cell=cell, **options)

    return build


def _stacked_lstm(channels: int, height: int, width: int, static: Tensor | None, **options: Any) -> Forecaster:
    return StackedLSTMForecaster(channels, height, width, static=static, **options)


def _persistence(channels: int, height: int, width: int, static: Tensor | None) -> Forecaster:
    return Persistence()


KINDS: dict[str, _Kind] = {
    "convlstm": _Kind(_convlstm("convlstm"), ("hidden", "kernel_size", "patch_size", "peephole", "norm")),
    "convgru": _Kind(_convlstm("convgru"), ("hidden", "kernel_size", "patch_size")),
    "stacked_lstm": _Kind(_stacked_lstm, ("hidden", "layers", "mode", "patch_size")),
    "persistence": _Kind(_persistence, ()),
    "climatology": _Kind(_persistence, ()),  # built apart below: it needs the climatology map
}


def build_network(
    kind: str,
    *,
    channels: int,
    height: int,
    width: int,
    static: Tensor | None = None,
    climatology: Tensor | None = None,
    **options: Any,
) -> Forecaster:
    """A network for ``channels`` data channels on a ``height`` x ``width`` grid.

    ``static`` ``[S, H, W]`` feeds the learned nets (the baselines ignore it); ``climatology``
    ``[C, H, W]`` in normalised units is required by kind "climatology". ``options`` are the chosen
    class's constructor arguments (see ``KINDS``); unknown kinds or options raise ``ConfigError``.
    """
    if kind not in KINDS:
        raise ConfigError(f"Unknown network kind {kind!r}; valid kinds: {', '.join(KINDS)}.")
    unknown = sorted(set(options) - set(KINDS[kind].options))
    if unknown:
        valid = ", ".join(KINDS[kind].options) or "none"
        raise ConfigError(
            f"Unknown option(s) {', '.join(map(repr, unknown))} for network kind {kind!r}; valid options: {valid}."
        )
    if static is not None and tuple(static.shape[-2:]) != (height, width):
        raise ConfigError(f"static fields are on a {tuple(static.shape[-2:])} grid, the data on {(height, width)}.")
    if kind == "climatology":
        if climatology is None:
            raise ConfigError("Network kind 'climatology' needs the climatology map [C, H, W]; none was given.")
        if tuple(climatology.shape) != (channels, height, width):
            raise ConfigError(
                f"climatology map is {tuple(climatology.shape)}, the data is {(channels, height, width)} "
                f"(channels, height, width)."
            )
        return Climatology(climatology)
    return KINDS[kind].build(channels, height, width, static, **options)
