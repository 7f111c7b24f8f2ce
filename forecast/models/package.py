"""A trained model as one self-contained folder: weights, how to rebuild the net, and the data statistics it
was trained with, loadable with ``weights_only=True`` and ``allow_pickle=False`` (no code runs on load)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from forecast.atomic import write_then_rename
from forecast.errors import ModelError
from forecast.models.base import Forecaster
from forecast.models.registry import build_network

WEIGHTS, DESCRIPTION, ARRAYS = "weights.pt", "model.json", "data.npz"
ARRAY_NAMES = ("mean", "std", "mask", "climatology", "static", "lat_weights", "latitude", "longitude")
FORMAT_VERSION = 1


@dataclass
class ModelPackage:
    """A network with everything prediction needs to feed it and to turn its output into physical maps.

    ``description`` holds: network (kind, options, static), channels (name, variable, level, units,
    standard_name, long_name each), input_steps, output_steps, time_step, calendar, store (path,
    content_hash), forecast_version, and whatever the trainer adds (run id, validation skill).
    ``arrays``: mean, std ``[C]``; mask, climatology (normalised) ``[C, H, W]``; static ``[S, H, W]``;
    lat_weights, latitude ``[H]``; longitude ``[W]``.
    """

    net: Forecaster
    description: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def channels(self) -> list[str]:
        return [c["name"] for c in self.description["channels"]]


def save_package(directory: Path, net: Forecaster, description: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    missing = [name for name in ARRAY_NAMES if name not in arrays]
    if missing:
        raise ValueError(f"model package needs the arrays {missing}")

    def write(folder: Path) -> None:
        folder.mkdir()
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, folder / WEIGHTS)
        (folder / DESCRIPTION).write_text(json.dumps({"format": FORMAT_VERSION, **description}, indent=2))
        np.savez(folder / ARRAYS, **{name: np.asarray(arrays[name]) for name in ARRAY_NAMES})

    return write_then_rename(directory, write)


def load_package(directory: Path) -> ModelPackage:
    """Rebuild the network from a package folder; ``ModelError`` naming the folder if it is not one."""
    try:
        description = json.loads((directory / DESCRIPTION).read_text())
        with np.load(directory / ARRAYS, allow_pickle=False) as data:
            arrays = {name: data[name] for name in ARRAY_NAMES}
        weights = torch.load(directory / WEIGHTS, map_location="cpu", weights_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(f"{directory}: not a forecast model package ({exc}).") from exc
    if description.get("format") != FORMAT_VERSION:
        raise ModelError(f"{directory}: model package format {description.get('format')}, expected {FORMAT_VERSION}.")
    network = description["network"]
    channels, height, width = arrays["mask"].shape
    net = build_network(network["kind"], channels=channels, height=height, width=width,
                        static=torch.from_numpy(arrays["static"]) if network["static"] else None,
                        climatology=torch.from_numpy(arrays["climatology"]), **network["options"])
    net.load_state_dict(weights)
    return ModelPackage(net.eval(), description, arrays)
