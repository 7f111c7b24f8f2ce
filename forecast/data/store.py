"""The analysis-ready store: its layout on disk, atomic writing, and the one reader of its metadata."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from forecast.atomic import write_then_rename
from forecast.data.calendar import TimeStep
from forecast.data.climatology import Slots
from forecast.data.reader import FieldsReader
from forecast.data.windows import SPLITS, SplitRange
from forecast.errors import DataError, first_line

FORMAT_VERSION = 2
STATIC_CHANNELS = ("valid", "sin_latitude", "cos_latitude")
CHANNEL_COORDS = ("variable", "level", "units", "standard_name", "long_name")
SMALL_ARRAYS = ("mean", "std", "mask", "climatology", "slot", "static", "lat_weights", "segment", "source_longitude")


def latitude_weights(latitude: np.ndarray) -> np.ndarray:
    """Cell-area weights normalised to mean 1 (WeatherBench2: difference of sin of the cell bounds)."""
    lat = np.deg2rad(np.asarray(latitude, dtype=np.float64))
    if lat.size == 1:
        return np.ones(1)
    mid = (lat[1:] + lat[:-1]) / 2
    bounds = np.concatenate(
        [[max(lat[0] - (mid[0] - lat[0]), -np.pi / 2)], mid, [min(lat[-1] + (lat[-1] - mid[-1]), np.pi / 2)]]
    )
    weights = np.abs(np.sin(bounds[1:]) - np.sin(bounds[:-1]))
    return weights / weights.mean()


def static_fields(valid: np.ndarray, latitude: np.ndarray, n_lon: int) -> np.ndarray:
    """``[S, H, W]`` inputs every model may append: validity of all channels, sin and cos of latitude."""
    lat = np.deg2rad(latitude)[:, None] * np.ones((1, n_lon))
    return np.stack([valid.all(axis=0).astype(np.float32), np.sin(lat), np.cos(lat)]).astype(np.float32)


def write_atomically(ds: xr.Dataset, output: Path, encoding: dict[str, Any], block_steps: int,
                     run: Callable[[slice, Any], None], finish: Callable[[Path], None]) -> None:
    """Write ``ds`` to a temporary store beside ``output``, then rename it into place.

    Everything but ``fields`` is written first; ``fields`` follows in blocks of ``block_steps`` time steps,
    each handed to ``run(region, delayed_write)`` to compute (with whatever it reduces alongside). Blocks
    bound memory by one block whatever dask's order: given the whole graph, it reads source chunks faster
    than it writes them (peak RSS grew with the dataset). ``finish(tmp)`` may then amend the small arrays
    and attributes. A failure leaves nothing at ``output``; an existing store is replaced once the new one
    is complete.
    """
    fields = ds[["fields"]].drop_vars(list(ds["fields"].coords))  # regions take data variables only
    n_time = ds.sizes["time"]

    def write(tmp: Path) -> None:
        ds.to_zarr(tmp, mode="w", encoding=encoding, compute=False, zarr_format=3, consolidated=False)
        for start in range(0, n_time, block_steps):
            region = slice(start, min(start + block_steps, n_time))
            run(region, fields.isel(time=region).to_zarr(tmp, mode="r+", region={"time": region}, compute=False,
                                                         zarr_format=3, consolidated=False))
        finish(tmp)

    write_then_rename(output, write)


@dataclass(frozen=True)
class ChannelMeta:
    """One channel of a store and the CF metadata its source variable carried."""

    name: str
    variable: str
    level: float | None
    units: str
    standard_name: str
    long_name: str


@dataclass(frozen=True)
class StoreInfo:
    """What a consumer needs to know of a store without reading its fields: grid, times, splits, statistics,
    provenance. The one reader of a store's metadata (``open_store``)."""

    path: Path
    channels: list[ChannelMeta]
    times: np.ndarray  # [time] numpy datetimes or cftime objects
    segment: np.ndarray  # [time] int32: equal labels = no gap between
    split_ranges: dict[str, SplitRange]
    split_periods: dict[str, tuple[str, str]]
    mean: np.ndarray  # [C] physical units
    std: np.ndarray  # [C]
    mask: np.ndarray  # [C, H, W] bool
    climatology: np.ndarray  # [S, C, H, W] normalised
    slots: Slots
    slot: np.ndarray  # [time] climatology slot of each time
    static: np.ndarray  # [S_static, H, W]
    lat_weights: np.ndarray  # [H]
    latitude: np.ndarray  # [H] ascending
    longitude: np.ndarray  # [W] increasing, in longitude_convention
    source_longitude: np.ndarray  # [W] the same columns in the source's own values
    time_step: TimeStep
    calendar: str
    gaps: list[tuple[str, str]]
    missing_maps: list[str]
    longitude_convention: str
    source_longitude_convention: str
    source_latitude_order: str
    periodic: bool
    sources: list[dict[str, Any]]
    content_hash: str
    created: str
    settings: dict[str, Any]

    @property
    def channel_names(self) -> list[str]:
        return [c.name for c in self.channels]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(time, channel, latitude, longitude)``."""
        return (self.times.size, len(self.channels), self.latitude.size, self.longitude.size)

    @cached_property
    def time_index(self) -> pd.Index:
        return xr.DataArray(self.times, dims="time").to_index()


def _read(path: Path) -> xr.Dataset:
    try:
        return xr.open_zarr(path, decode_times=xr.coders.CFDatetimeCoder(use_cftime=None), chunks=None,
                            consolidated=False)
    except Exception as exc:  # every reader failure is the same problem for the user
        raise DataError(f"{path}: not a readable store ({first_line(exc, 200)}); run `forecast prepare` first."
                        ) from exc


def _channels(ds: xr.Dataset) -> list[ChannelMeta]:
    coords = {name: ds[name].values for name in ("channel", *CHANNEL_COORDS)}
    return [ChannelMeta(name=str(coords["channel"][c]), variable=str(coords["variable"][c]),
                        level=None if np.isnan(coords["level"][c]) else float(coords["level"][c]),
                        units=str(coords["units"][c]), standard_name=str(coords["standard_name"][c]),
                        long_name=str(coords["long_name"][c]))
            for c in range(ds.sizes["channel"])]


def open_store(path: str | Path) -> StoreInfo:
    """Read and verify a store's small arrays and attributes; ``DataError`` if ``path`` is not a whole store."""
    path = Path(path)
    ds = _read(path)
    if ds.attrs.get("forecast_store_format") != FORMAT_VERSION or "fields" not in ds:
        found = ds.attrs.get("forecast_store_format")
        raise DataError(f"{path}: not a store written by this version of `forecast prepare` (format {found}, "
                        f"expected {FORMAT_VERSION}); prepare it again.")
    missing = [name for name in (*SMALL_ARRAYS, *CHANNEL_COORDS) if name not in ds.variables]
    if missing:
        raise DataError(f"{path}: array '{missing[0]}' is missing; the store is damaged, prepare it again.")
    small = {}
    for name in SMALL_ARRAYS:
        try:
            small[name] = ds[name].values
        except Exception as exc:  # a truncated or deleted chunk of a small array
            raise DataError(f"{path}: array '{name}' cannot be read ({first_line(exc, 120)}); the store is "
                            "damaged, prepare it again.") from exc
    if not (np.isfinite(small["mean"]).all() and np.isfinite(small["std"]).all() and (small["std"] > 0).all()):
        raise DataError(f"{path}: its normalisation statistics are not finite (mean {small['mean']}, std "
                        f"{small['std']}); the store is damaged, prepare it again.")
    FieldsReader(path).verify()
    attrs = ds.attrs
    splits = json.loads(attrs["splits"])
    slots = json.loads(attrs["climatology_slots"])
    return StoreInfo(
        path=path, channels=_channels(ds), times=ds["time"].values, segment=small["segment"],
        split_ranges={name: SplitRange(name, *splits[name]["index"]) for name in SPLITS},
        split_periods={name: tuple(splits[name]["period"]) for name in SPLITS},
        mean=small["mean"], std=small["std"], mask=small["mask"].astype(bool), climatology=small["climatology"],
        slots=Slots(**slots), slot=small["slot"], static=small["static"], lat_weights=small["lat_weights"],
        latitude=ds["latitude"].values, longitude=ds["longitude"].values, source_longitude=small["source_longitude"],
        time_step=TimeStep.parse(attrs["time_step"], attrs["time_anchor"]), calendar=attrs["calendar"],
        gaps=[tuple(g) for g in json.loads(attrs["gaps"])], missing_maps=json.loads(attrs["missing_maps"]),
        longitude_convention=attrs["longitude_convention"],
        source_longitude_convention=attrs["source_longitude_convention"],
        source_latitude_order=attrs["source_latitude_order"], periodic=bool(attrs["periodic_longitude"]),
        sources=json.loads(attrs["sources"]), content_hash=attrs["content_hash"], created=attrs["created"],
        settings=json.loads(attrs["config"]),
    )
