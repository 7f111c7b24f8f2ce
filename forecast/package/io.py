"""Save and load a model package folder: ``model.json`` (the card), ``weights.pt``, ``data.npz`` (arrays).

Loading runs no code from the files: weights with ``weights_only=True``, arrays with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from forecast.atomic import write_then_rename
from forecast.errors import ModelError, first_line
from forecast.models.base import Forecaster
from forecast.package.card import FORMAT_VERSION, ModelCard

WEIGHTS, CARD, ARRAYS = "weights.pt", "model.json", "data.npz"
# mean, std [C]; mask [C, H, W]; climatology [S, C, H, W] normalised; static [S, H, W]; lat_weights, latitude
# [H]; longitude, source_longitude [W]; damping [T_out, C, H, W].
ARRAY_NAMES = ("mean", "std", "mask", "climatology", "static", "lat_weights", "latitude", "longitude",
               "source_longitude", "damping")


@dataclass
class ModelPackage:
    """A network with everything prediction needs to feed it and to turn its output into physical maps."""

    net: Forecaster
    card: ModelCard
    arrays: dict[str, np.ndarray]


def save_package(directory: Path, net: Forecaster, card: ModelCard, arrays: dict[str, np.ndarray]) -> Path:
    """Write the package folder atomically; returns its path."""
    missing = [name for name in ARRAY_NAMES if name not in arrays]
    if missing:
        raise ValueError(f"model package needs the arrays {missing}")

    def write(folder: Path) -> None:
        folder.mkdir()
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, folder / WEIGHTS)
        (folder / CARD).write_text(json.dumps(card.to_dict(), indent=2, default=str))
        np.savez(folder / ARRAYS, **{name: np.asarray(arrays[name]) for name in ARRAY_NAMES})

    return write_then_rename(directory, write)


def load_card(directory: Path) -> ModelCard:
    try:
        data = json.loads((directory / CARD).read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{directory}: not a forecast model package ({CARD}: {first_line(exc, 120)}).") from exc
    if data.get("format") != FORMAT_VERSION:
        raise ModelError(f"{directory}: a model package of format {data.get('format')} (this version reads "
                         f"{FORMAT_VERSION}); train it again with `forecast train` to package it for this version.")
    try:
        return ModelCard.from_dict(data)
    except (TypeError, KeyError, ValueError) as exc:
        raise ModelError(f"{directory}: {CARD} is damaged ({first_line(exc, 120)}); train the model again.") from exc


def load_package(directory: Path) -> ModelPackage:
    """Rebuild the network from a package folder; ``ModelError`` naming the file that is not what it should be."""
    directory = Path(directory)
    card = load_card(directory)
    try:
        with np.load(directory / ARRAYS, allow_pickle=False) as data:
            arrays = {name: data[name] for name in ARRAY_NAMES}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{directory / ARRAYS}: cannot be read as the package's arrays ({first_line(exc, 120)}); "
                         "train the model again.") from exc
    try:
        weights = torch.load(directory / WEIGHTS, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        # weights_only refuses anything but tensors and plain containers: a crafted pickle lands here, unrun.
        raise ModelError(f"{directory / WEIGHTS}: not loadable as weights ({first_line(exc, 160)}); train the model "
                         "again or restore the file.") from exc
    net = card.network.build(arrays["mask"].shape, arrays["static"], arrays["damping"], card.input_steps,
                             card.output_steps)
    try:
        net.load_state_dict(weights)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ModelError(f"{directory / WEIGHTS}: the weights do not fit the network the card describes "
                         f"({first_line(exc, 160)}).") from exc
    return ModelPackage(net.eval(), card, arrays)
