"""The analysis-ready store: its layout on disk, atomic writing, and a light reader of its metadata."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from forecast.data.windows import SPLITS, SplitRange
from forecast.atomic import write_then_rename
from forecast.errors import DataError

FORMAT_VERSION = 1
STATIC_CHANNELS = ("valid", "sin_latitude", "cos_latitude")


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
                     run: Callable[[Any, str], object]) -> None:
    """Write ``ds`` to a temporary store beside ``output`` then rename it into place.

    Everything but ``fields`` is written first; ``fields`` follows in blocks of ``block_steps`` time steps,
    each computed by ``run(delayed, description)``. Blocks bound memory by one block whatever dask's
    order: given the whole graph, it reads source chunks faster than it writes them (peak RSS grew with
    the dataset). A failure leaves nothing at ``output``; an existing store is replaced once the new one
    is complete.
    """
    fields = ds[["fields"]].drop_vars(list(ds["fields"].coords))  # regions take data variables only
    n_time = ds.sizes["time"]
    blocks = range(0, n_time, block_steps)

    def write(tmp: Path) -> None:
        ds.to_zarr(tmp, mode="w", encoding=encoding, compute=False, zarr_format=3, consolidated=False)
        for k, start in enumerate(blocks):
            region = slice(start, min(start + block_steps, n_time))
            delayed = fields.isel(time=region).to_zarr(tmp, mode="r+", region={"time": region}, compute=False,
                                                       zarr_format=3, consolidated=False)
            run(delayed, f"writing {output.name} (block {k + 1}/{len(blocks)})")

    write_then_rename(output, write)


@dataclass(frozen=True)
class StoreInfo:
    """What a consumer needs to know of a store without reading its fields: grid, times, splits, statistics."""

    path: Path
    channels: list[str]
    times: np.ndarray  # [time] numpy datetimes or cftime objects
    segment: np.ndarray  # [time] int32
    split_ranges: dict[str, SplitRange]
    mean: np.ndarray  # [C]
    std: np.ndarray  # [C]
    mask: np.ndarray  # [C, H, W] bool
    climatology: np.ndarray  # [C, H, W] normalised
    static: np.ndarray  # [S, H, W]
    lat_weights: np.ndarray  # [H]
    latitude: np.ndarray
    longitude: np.ndarray
    chunk_steps: int
    attrs: dict[str, Any]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(time, channel, latitude, longitude)``."""
        return (self.times.size, len(self.channels), self.latitude.size, self.longitude.size)

    @cached_property
    def time_index(self) -> pd.Index:
        return xr.DataArray(self.times, dims="time").to_index()


def open_store(path: str | Path) -> StoreInfo:
    """Read a store's small arrays and attributes; ``DataError`` if ``path`` is not a prepared store."""
    path = Path(path)
    try:
        ds = xr.open_zarr(
            path, decode_times=xr.coders.CFDatetimeCoder(use_cftime=None), chunks=None, consolidated=False
        )
    except Exception as exc:
        raise DataError(f"{path}: not a readable store ({exc}); run `forecast prepare` first.") from exc
    if ds.attrs.get("forecast_store_format") != FORMAT_VERSION or "fields" not in ds:
        raise DataError(
            f"{path}: not a store written by `forecast prepare` (format {FORMAT_VERSION}); prepare it again."
        )
    splits = json.loads(ds.attrs["splits"])
    return StoreInfo(
        path=path,
        channels=[str(c) for c in ds["channel"].values],
        times=ds["time"].values,
        segment=ds["segment"].values,
        split_ranges={name: SplitRange(name, *splits[name]["index"]) for name in SPLITS},
        mean=ds["mean"].values,
        std=ds["std"].values,
        mask=ds["mask"].values.astype(bool),
        climatology=ds["climatology"].values,
        static=ds["static"].values,
        lat_weights=ds["lat_weights"].values,
        latitude=ds["latitude"].values,
        longitude=ds["longitude"].values,
        chunk_steps=int(ds["fields"].encoding["chunks"][0]),
        attrs=dict(ds.attrs),
    )
