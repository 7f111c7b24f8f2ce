"""Assemble what a training needs from the store and the settings: the network spec, the net and its module."""

from __future__ import annotations

import dataclasses
import logging

import torch

from forecast.data.calendar import Cycles
from forecast.data.store import StoreInfo
from forecast.models.optical_flow import unsuitable
from forecast.models.registry import KINDS
from forecast.package import NetworkSpec
from forecast.training.config import ModelConfig, OptimConfig
from forecast.training.fitting import ReferenceFit
from forecast.training.module import ForecastModule

log = logging.getLogger(__name__)


def resolve_cycles(setting: str, info: StoreInfo) -> Cycles:
    """``auto``: the cycles the store's time step resolves; else the ones named."""
    if setting == "auto":
        return Cycles.natural(info.time_step)
    return Cycles(seasonal=setting in {"seasonal", "both"}, diurnal=setting in {"diurnal", "both"})


def network_spec(model: ModelConfig, info: StoreInfo) -> NetworkSpec:
    """What the card records of the network: kind, options and the forecaster settings resolved for this store."""
    learned = model.kind in KINDS
    return NetworkSpec(kind=model.kind, options=dict(model.options), static=model.static and learned,
                       base=model.base if learned else "last", input_norm=model.input_norm if learned else "none",
                       periodic=info.periodic, cycles=resolve_cycles(model.cycles, info) if learned else Cycles())


def build_module(spec: NetworkSpec, info: StoreInfo, input_steps: int, output_steps: int, optim: OptimConfig,
                 fit: ReferenceFit, compile_cells: bool = False) -> ForecastModule:
    """The network on the store's grid, its blend fitted, wrapped for training and validation."""
    net = spec.build(info.mask.shape, info.static, fit.damping.numpy(), input_steps, output_steps)
    if net.blend is not None:
        prior = net.blend.fit(fit.gram, fit.rhs, fit.squares)
        log.info("blend fitted on %d training windows, drawn towards %s (the best simple forecast there)",
                 fit.windows, prior)
    if compile_cells and hasattr(net, "compile_cells"):
        net.compile_cells()
    why_not = unsuitable(info.time_step.approximate_days, info.mask, input_steps)
    if why_not:
        log.info("optical-flow reference not scored: %s", why_not)
    return ForecastModule(net, torch.from_numpy(info.lat_weights), fit.damping, info.channel_names,
                          [float(s) for s in info.std], [c.units for c in info.channels], output_steps, optim,
                          optical_flow=why_not is None, periodic=info.periodic, network=dataclasses.asdict(spec))
