"""Cut a canonical dataset down to what an experiment uses: levels, region, period, resolution, channels."""

from __future__ import annotations

import numpy as np
import xarray as xr

from forecast.data.config import Period, Region
from forecast.data.longitude import EAST, apply_convention, choose_convention, convention_of, in_box, wrap
from forecast.errors import DataError

SPATIAL = ("latitude", "longitude")


def select_region(ds: xr.Dataset, region: Region, name: str, convention: str | None = None) -> xr.Dataset:
    """Keep the box, with longitudes in ``convention`` (default: the one in which the kept grid is contiguous).

    The source's own longitudes and convention are recorded, so that forecasts are written back in them.
    """
    ds = ds.sel(latitude=slice(region.lat_min, region.lat_max))
    ds = ds.isel(longitude=np.flatnonzero(in_box(ds["longitude"].values, region.lon_min, region.lon_max)))
    if ds.sizes["latitude"] == 0 or ds.sizes["longitude"] == 0:
        raise DataError(
            f"{name}: data.region {region} selects no grid points; the data covers latitude "
            f"{_span(ds, 'latitude')}: widen the box."
        )
    ds.attrs["source_longitude_convention"] = convention_of(ds["longitude"].values)
    return apply_convention(ds, convention or choose_convention(ds["longitude"].values))


def _span(ds: xr.Dataset, coord: str) -> str:
    values = ds[coord].values
    return f"{values.min():g}..{values.max():g}" if values.size else "(nothing left)"


def select_time(ds: xr.Dataset, period: Period | None, name: str) -> xr.Dataset:
    if period is None:
        return ds
    out = ds.sel(time=slice(period.start, period.end))
    if out.sizes["time"] == 0:
        raise DataError(
            f"{name}: data.time_range {period.start}..{period.end} holds no time step; the data runs "
            f"{ds['time'].values[0]} .. {ds['time'].values[-1]}."
        )
    return out


def coarsen(ds: xr.Dataset, factor: int) -> xr.Dataset:
    """Block-average ``factor × factor`` grid points (NaN-skipping), trimming the edge."""
    if factor <= 1:
        return ds
    out = ds.coarsen(latitude=factor, longitude=factor, boundary="trim").mean(keep_attrs=True)
    # A block straddling the source's seam (359.5° and 0.5°) must not average to 180°.
    source = wrap(out["longitude"].values, ds.attrs.get("source_longitude_convention", EAST))
    return out.assign_coords(source_longitude=("longitude", source))


def stack_channels(ds: xr.Dataset, variables: list[str], levels: list[float], name: str) -> xr.DataArray:
    """``[time, channel, latitude, longitude]`` in physical units: one channel per variable (and level).

    Channel names are the variable, or variable and level (``z500``); per-channel units and names ride
    along as coordinates so ``predict`` can write them back.
    """
    channels: list[xr.DataArray] = []
    for var in variables:
        da = ds[var]
        extra = [d for d in da.dims if d not in ("time", "level", *SPATIAL)]
        if extra:
            raise DataError(
                f"{name}: variable '{var}' has extra dimension(s) {extra}; select one member/index "
                "first (only time, level, latitude, longitude are understood)."
            )
        if "level" in da.dims:
            chosen = levels or [float(v) for v in da["level"].values]
            missing = [lv for lv in chosen if not np.isclose(da["level"].values, lv).any()]
            if missing:
                raise DataError(
                    f"{name}: variable '{var}' has no level {missing[0]:g}; it has "
                    f"{', '.join(f'{v:g}' for v in da['level'].values)}."
                )
            channels += [_channel(da.sel(level=lv, method="nearest"), f"{var}{lv:g}", var, lv) for lv in chosen]
        else:
            channels.append(_channel(da, var, var, np.nan))
    stacked = xr.concat(channels, dim="channel", coords="minimal", compat="override", join="override")
    return stacked.transpose("time", "channel", *SPATIAL)


def _channel(da: xr.DataArray, channel: str, variable: str, level: float) -> xr.DataArray:
    da = da.drop_vars([c for c in da.coords if c not in ("time", "source_longitude", *SPATIAL)])
    return da.expand_dims(channel=[channel]).assign_coords(
        variable=("channel", [variable]),
        level=("channel", [level]),
        units=("channel", [str(da.attrs.get("units", ""))]),
        standard_name=("channel", [str(da.attrs.get("standard_name", ""))]),
        long_name=("channel", [str(da.attrs.get("long_name", variable))]),
    )
