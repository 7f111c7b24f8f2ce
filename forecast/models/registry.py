"""Build any network by kind name: the one place a config string becomes a ``Forecaster``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from forecast.errors import ConfigError
from forecast.models.base import Base, Forecaster, InputNorm
from forecast.models.baselines import REFERENCES, Reference
from forecast.models.convlstm import ConvLSTMForecaster
from forecast.models.stacked_lstm import StackedLSTMForecaster


@dataclass(frozen=True)
class Grid:
    """What a network is built for: ``channels`` data channels on a ``height`` × ``width`` grid, ``static`` maps
    ``[S, H, W]`` (or None), ``periodic`` in longitude, ``forcing`` values per frame."""

    channels: int
    height: int
    width: int
    static: Tensor | None = None
    periodic: bool = False
    forcing: int = 0


@dataclass(frozen=True)
class _Kind:
    """How to build one kind: a builder taking the grid, the forecaster settings and the options; option names."""

    build: Callable[..., Forecaster]
    options: tuple[str, ...]


def _convlstm(cell: str) -> Callable[..., Forecaster]:
    def build(grid: Grid, forecaster: dict[str, Any], **options: Any) -> Forecaster:
        return ConvLSTMForecaster(grid.channels, static=grid.static, cell=cell, periodic=grid.periodic,
                                  width=grid.width, forcing=grid.forcing, **forecaster, **options)

    return build


def _stacked_lstm(grid: Grid, forecaster: dict[str, Any], **options: Any) -> Forecaster:
    return StackedLSTMForecaster(grid.channels, grid.height, grid.width, static=grid.static, forcing=grid.forcing,
                                 **forecaster, **options)


KINDS: dict[str, _Kind] = {
    "convlstm": _Kind(_convlstm("convlstm"),
                      ("hidden", "kernel_size", "patch_size", "peephole", "norm", "advect", "max_flow")),
    "convgru": _Kind(_convlstm("convgru"), ("hidden", "kernel_size", "patch_size", "advect", "max_flow")),
    "stacked_lstm": _Kind(_stacked_lstm, ("hidden", "layers", "mode", "patch_size")),
}


def build_network(kind: str, *, channels: int, height: int, width: int, static: Tensor | None = None,
                  periodic: bool = False, forcing: int = 0, input_steps: int | None = None,
                  output_steps: int | None = None, base: Base = "last", input_norm: InputNorm = "none",
                  damping: Tensor | None = None, **options: Any) -> Forecaster:
    """A network for ``channels`` data channels on a ``height`` x ``width`` grid.

    Learned kinds (``KINDS``) take their constructor ``options`` and the forecaster settings (``base``,
    ``input_norm``, the window's ``input_steps``/``output_steps``; see ``Forecaster``); ``static`` ``[S, H, W]``
    and ``forcing`` values feed them. The reference kinds (``REFERENCES``) take no options; damped persistence
    needs its ``damping`` ``[T_out, C, H, W]``. Unknown kinds or options raise ``ConfigError``.
    """
    if kind in REFERENCES:
        if options:
            raise ConfigError(f"Unknown option(s) {', '.join(map(repr, sorted(options)))} for network kind {kind!r}; "
                              "valid options: none.")
        return Reference(kind, channels, damping)
    if kind not in KINDS:
        raise ConfigError(f"Unknown network kind {kind!r}; valid kinds: {', '.join([*KINDS, *REFERENCES])}.")
    unknown = sorted(set(options) - set(KINDS[kind].options))
    if unknown:
        valid = ", ".join(KINDS[kind].options) or "none"
        raise ConfigError(
            f"Unknown option(s) {', '.join(map(repr, unknown))} for network kind {kind!r}; valid options: {valid}."
        )
    if static is not None and tuple(static.shape[-2:]) != (height, width):
        raise ConfigError(f"static fields are on a {tuple(static.shape[-2:])} grid, the data on {(height, width)}.")
    grid = Grid(channels, height, width, static, periodic, forcing)
    forecaster = {"input_steps": input_steps, "output_steps": output_steps, "base": base, "input_norm": input_norm,
                  "damping": damping}
    return KINDS[kind].build(grid, forecaster, **options)
