"""Forecasts as CF-1.8 datasets in the WeatherBench2 layout, written atomically to NetCDF or Zarr."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cftime
import numpy as np
import pandas as pd
import xarray as xr

from forecast.atomic import write_then_rename
from forecast.data.calendar import TimeStep
from forecast.data.store import ChannelMeta

CONVENTIONS = "CF-1.8"
_HOUR = pd.Timedelta(hours=1)


@dataclass(frozen=True)
class Grid:
    """Where forecasts are written: the store's grid and how the source laid it out (convention and order)."""

    latitude: np.ndarray  # [H] ascending, as the store
    longitude: np.ndarray  # [W] the store's columns, in the source's own longitude values
    latitude_descending: bool = False

    def layout(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``values`` ``[..., H, W]`` and both axes in the source's order: latitudes as the source had them,
        longitudes increasing in the source's convention (a grid across 0° written in [0, 360) comes back
        as 0…37 then 354…359, exactly as the source lists it)."""
        order = np.argsort(self.longitude, kind="stable")
        latitude, values = self.latitude, values[..., order]
        if self.latitude_descending:
            latitude, values = latitude[::-1], values[..., ::-1, :]
        return values, latitude, self.longitude[order]


def forecast_dataset(
    values: np.ndarray,
    init_times: Sequence[Any],
    step: TimeStep,
    channels: list[ChannelMeta],
    grid: Grid,
    attrs: dict[str, str | int | float],
) -> xr.Dataset:
    """One CF dataset of forecasts: a variable per source variable, its levels gathered on ``level``.

    ``values`` is ``[N_init, T, C, H, W]`` in physical units with NaN where invalid; lead ``k`` (1-based)
    is ``k`` steps after its init time, by calendar arithmetic. ``init_times`` are numpy datetimes or cftime
    datetimes of one calendar. A lead of calendar months has no fixed duration: ``prediction_timedelta`` then
    counts months (units ``months``, or ``years``) and ``valid_time`` holds the exact dates.
    """
    times = _as_time_array(init_times)
    output_steps = values.shape[1]
    expected = (times.size, output_steps, len(channels), len(grid.latitude), len(grid.longitude))
    if values.shape != expected:
        raise ValueError(f"values have shape {values.shape}; init times, channels and grid ask for {expected}.")
    bad = {key: type(value).__name__ for key, value in attrs.items() if type(value) not in (str, int, float)}
    if bad:
        raise TypeError(f"attrs must be str, int or float to survive NetCDF and Zarr; got {bad}.")

    values, latitude, longitude = grid.layout(values)
    levels = sorted({c.level for c in channels if c.level is not None})
    coords = _coords(times, _leads(step, output_steps), levels, latitude, longitude)
    valid_time = np.array([step.sequence(t, output_steps) for t in times], dtype=times.dtype)  # [N_init, T]
    coords["valid_time"] = xr.Variable(
        ("time", "prediction_timedelta"), valid_time, {"standard_name": "time", "long_name": "valid time"}
    )
    ds = xr.Dataset(_data_vars(values, channels, levels), coords=coords, attrs={"Conventions": CONVENTIONS, **attrs})
    # One reference and calendar for both time coordinates keeps the files readable by CF tools and
    # lets the 360_day and noleap calendars round-trip through NetCDF and Zarr alike.
    time_encoding = {"units": _time_units(np.concatenate([times, valid_time.ravel()])), "calendar": _calendar(times)}
    ds["time"].encoding.update(time_encoding)
    ds["valid_time"].encoding.update(time_encoding)
    return ds


def _leads(step: TimeStep, count: int) -> xr.Variable:
    """``prediction_timedelta``: timedeltas for a fixed step; whole months (or years) for a calendar step."""
    attrs = {"standard_name": "forecast_period", "long_name": "lead time"}
    if not step.is_calendar:
        values = (np.arange(1, count + 1) * step.duration.to_timedelta64()).astype("timedelta64[ns]")
        return xr.Variable("prediction_timedelta", values, attrs)
    numbers, unit = step.lead_values(count)
    attrs |= {"units": unit, "comment": f"calendar {unit}: lead k is k×{step} after the forecast reference time by "
                                         "calendar arithmetic; valid_time holds the exact dates"}
    return xr.Variable("prediction_timedelta", np.asarray(numbers, np.int32), attrs)


def write_netcdf(ds: xr.Dataset, path: str | Path) -> None:
    """Write ``ds`` to a NetCDF-4 file at ``path``, zlib-compressed; a failure leaves no partial file."""
    encoding = _encoding(ds, {"zlib": True, "complevel": 4, "_FillValue": np.float32(np.nan)})
    write_then_rename(Path(path), lambda tmp: ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding))


def write_zarr(ds: xr.Dataset, path: str | Path) -> None:
    """Write ``ds`` as a Zarr v3 store, one init time per chunk, replacing any store at ``path`` atomically."""
    encoding = _encoding(ds, {"_FillValue": np.float32(np.nan)})
    for name in ds.data_vars:
        encoding[str(name)]["chunks"] = (1, *ds[name].shape[1:])

    def write(tmp: Path) -> None:
        # Consolidated so that a plain ``xr.open_zarr(path)`` (as WeatherBench2 calls it) opens the store
        # without a fallback warning; zarr warns that v3 has not standardised consolidation yet.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Consolidated metadata is currently not part", UserWarning)
            ds.to_zarr(tmp, mode="w", encoding=encoding, zarr_format=3, consolidated=True)

    write_then_rename(Path(path), write)


def forecast_file_name(prefix: str, init_time: Any) -> str:
    """``<prefix>_YYYYmmddTHHMM.nc`` for a numpy, pandas, datetime or cftime init time."""
    return f"{prefix}_{_as_datetime(init_time).strftime('%Y%m%dT%H%M')}.nc"


def _as_time_array(init_times: Sequence[Any]) -> np.ndarray:
    """``[N_init]`` datetime64[ns], or an object array of cftime datetimes for non-standard calendars."""
    times = np.asarray(init_times)
    if times.dtype == object and times.size and isinstance(times[0], cftime.datetime):
        return times
    return pd.DatetimeIndex(times).values


def _as_datetime(time: Any) -> Any:
    """Something with ``strftime``: numpy datetimes become ``pd.Timestamp``; cftime and datetime pass."""
    return pd.Timestamp(time) if isinstance(time, np.datetime64) else time


def _calendar(times: np.ndarray) -> str:
    # numpy datetimes are proleptic Gregorian by definition; xarray names them so when it encodes them.
    return times[0].calendar if times.dtype == object else "proleptic_gregorian"


def _time_units(times: np.ndarray) -> str:
    """``hours since <first time>`` when every time is a whole hour after it, else seconds (stays int64)."""
    offsets = [pd.Timedelta(t - times[0]) for t in times]
    unit = "hours" if all(d % _HOUR == pd.Timedelta(0) for d in offsets) else "seconds"
    return f"{unit} since {_as_datetime(times[0]).strftime('%Y-%m-%d %H:%M:%S')}"


def _coords(
    times: np.ndarray, leads: xr.Variable, levels: list[float], latitude: np.ndarray, longitude: np.ndarray
) -> dict[str, xr.Variable]:
    coords = {
        "time": xr.Variable(
            "time", times, {"standard_name": "forecast_reference_time", "long_name": "forecast initialisation time"}
        ),
        "prediction_timedelta": leads,
        "latitude": xr.Variable(
            "latitude",
            np.asarray(latitude, dtype=np.float64),
            {"units": "degrees_north", "standard_name": "latitude", "long_name": "latitude", "axis": "Y"},
        ),
        "longitude": xr.Variable(
            "longitude",
            np.asarray(longitude, dtype=np.float64),
            {"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude", "axis": "X"},
        ),
    }
    if levels:
        # The store keeps level values but not their units, so only the axis is asserted here.
        coords["level"] = xr.Variable("level", np.asarray(levels, dtype=np.float64), {"long_name": "level"})
    return coords


def _data_vars(values: np.ndarray, channels: list[ChannelMeta], levels: list[float]) -> dict[str, xr.Variable]:
    """One float32 variable per source variable; levels a variable lacks stay NaN on the shared axis."""
    by_variable: dict[str, list[int]] = {}
    for index, channel in enumerate(channels):
        by_variable.setdefault(channel.variable, []).append(index)
    data_vars = {}
    for variable, indices in by_variable.items():
        first = channels[indices[0]]
        # Empty strings mean the source had no such attribute; CF prefers the attribute absent.
        named = {"units": first.units, "standard_name": first.standard_name, "long_name": first.long_name}
        attrs = {key: value for key, value in named.items() if value}
        if first.level is None:
            data = values[:, :, indices[0]].astype(np.float32)  # [N_init, T, H, W]
            data_vars[variable] = xr.Variable(("time", "prediction_timedelta", "latitude", "longitude"), data, attrs)
            continue
        data = np.full((*values.shape[:2], len(levels), *values.shape[3:]), np.nan, dtype=np.float32)
        for index in indices:
            data[:, :, levels.index(channels[index].level)] = values[:, :, index]  # [N_init, T, H, W]
        dims = ("time", "prediction_timedelta", "level", "latitude", "longitude")
        data_vars[variable] = xr.Variable(dims, data, attrs)
    return data_vars


def _encoding(ds: xr.Dataset, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-variable encoding: ``data`` for data variables, no fill value for coordinates.

    The time units and calendar set by ``forecast_dataset`` are carried over because xarray replaces a
    variable's own encoding with whatever is passed for it.
    """
    encoding: dict[str, dict[str, Any]] = {}
    for name, variable in ds.variables.items():
        kept = {key: value for key, value in variable.encoding.items() if key in ("units", "calendar")}
        encoding[str(name)] = {**kept, **data} if name in ds.data_vars else {**kept, "_FillValue": None}
    return encoding
