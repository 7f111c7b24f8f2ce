"""The model card: everything serving needs to know of a trained network besides its weights and arrays."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from forecast.data.calendar import NO_CYCLES, Cycles, TimeStep
from forecast.data.climatology import Slots
from forecast.data.store import ChannelMeta
from forecast.models.base import Forecaster
from forecast.models.registry import build_network

FORMAT_VERSION = 2


@dataclass(frozen=True)
class NetworkSpec:
    """How to rebuild the network: its kind and options, and the forecaster settings it was trained with."""

    kind: str
    options: dict[str, Any]
    static: bool
    base: str = "last"
    input_norm: str = "none"
    periodic: bool = False
    cycles: Cycles = NO_CYCLES

    def build(self, grid: tuple[int, int, int], static: np.ndarray, damping: np.ndarray, input_steps: int,
              output_steps: int) -> Forecaster:
        """The untrained network on a ``(channels, height, width)`` grid; ``static`` ``[S, H, W]`` feeds it when
        the spec says so, ``damping`` ``[T_out, C, H, W]`` serves the damped-persistence kind."""
        channels, height, width = grid
        return build_network(self.kind, channels=channels, height=height, width=width,
                             static=torch.from_numpy(np.asarray(static, np.float32)) if self.static else None,
                             periodic=self.periodic, forcing=self.cycles.count, input_steps=input_steps,
                             output_steps=output_steps, base=self.base, input_norm=self.input_norm,  # type: ignore[arg-type]
                             damping=torch.from_numpy(np.asarray(damping, np.float32)), **self.options)


@dataclass(frozen=True)
class Selection:
    """What ``prepare`` cut from the sources, so that new raw files are cut the same way for ``predict``."""

    variables: list[str]
    levels: list[float] = field(default_factory=list)
    region: dict[str, float] = field(default_factory=dict)
    coarsen: int = 1
    time_range: dict[str, str] | None = None
    max_missing: float = 0.5


@dataclass(frozen=True)
class ModelCard:
    """The typed contract between training and serving (saved as ``model.json``).

    ``channels`` carry units and names; ``time_step``/``time_anchor``/``calendar`` give valid times;
    ``longitude_convention`` is the store's, ``source_longitude_convention`` and ``source_latitude_order`` how
    forecasts are written back; ``store`` names the training data (path, content hash); ``training`` holds the
    run id, the validation RMSE of the model and every reference (normalised units), and steps trained.
    """

    network: NetworkSpec
    channels: list[ChannelMeta]
    input_steps: int
    output_steps: int
    time_step: str
    time_anchor: str
    calendar: str
    slots: Slots
    selection: Selection
    longitude_convention: str
    source_longitude_convention: str
    source_latitude_order: str
    store: dict[str, str]
    training: dict[str, Any] = field(default_factory=dict)
    forecast_version: str = ""
    format: int = FORMAT_VERSION

    @property
    def channel_names(self) -> list[str]:
        return [c.name for c in self.channels]

    @property
    def step(self) -> TimeStep:
        return TimeStep.parse(self.time_step, self.time_anchor)

    def replace(self, **changes: Any) -> ModelCard:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        network = dict(data["network"])
        network["cycles"] = Cycles(**network.get("cycles", {}))
        return cls(**{**data, "network": NetworkSpec(**network),
                      "channels": [ChannelMeta(**c) for c in data["channels"]], "slots": Slots(**data["slots"]),
                      "selection": Selection(**data["selection"])})
