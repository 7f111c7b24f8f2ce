"""Open raw CF sources lazily and give them canonical names and longitude/latitude conventions."""

from __future__ import annotations

import glob
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from forecast.data.longitude import EAST, apply_convention, convention_of, wrap
from forecast.data.units import conversion
from forecast.errors import DataError, first_line

log = logging.getLogger(__name__)

# Common spellings of the canonical dimensions in CF files, ERA5 downloads and model output.
ALIASES = {
    "time": ("time", "valid_time", "Time"),
    "latitude": ("latitude", "lat", "nav_lat", "y", "Latitude", "LAT"),
    "longitude": ("longitude", "lon", "nav_lon", "x", "Longitude", "LON"),
    "level": ("level", "pressure_level", "plev", "lev", "isobaricInhPa"),
}
_TIME_CODER = xr.coders.CFDatetimeCoder(use_cftime=None)  # numpy datetimes for standard calendars, cftime else


def resolve_paths(source: str) -> list[Path]:
    """The files (or the one Zarr store) a source string names, sorted; ``DataError`` if none."""
    if not source:
        raise DataError("No source given: set data.source (or --source) to a NetCDF file, a glob or a Zarr store.")
    if any(ch in source for ch in "*?["):
        paths = sorted(Path(p) for p in glob.glob(source))  # noqa: PTH207 (absolute globs: Path.glob takes relative ones)
        if not paths:
            raise DataError(f"No files match '{source}': check the path, and quote the glob in the shell.")
        return paths
    path = Path(source)
    if not path.exists():
        raise DataError(f"Source '{source}' does not exist: check the path.")
    return [path]


def _open_one(path: Path) -> xr.Dataset:
    is_zarr = path.is_dir() or path.suffix == ".zarr"
    try:
        if is_zarr:
            ds = xr.open_zarr(path, decode_times=_TIME_CODER, chunks=None)
        else:
            ds = xr.open_dataset(path, decode_times=_TIME_CODER, engine="netcdf4")
        # A truncated file often opens (the header is intact) and fails on its last records: read them now.
        for var in ds.data_vars.values():
            if var.ndim and var.size:
                var[(-1,) * var.ndim].load()
        return ds
    except Exception as exc:  # every reader failure is the same user problem: this file cannot be read
        kind = "a Zarr store" if is_zarr else "NetCDF"
        raise DataError(f"{path}: cannot be read as {kind} ({first_line(exc)}); re-download or remove it.") from exc


def canonicalise(ds: xr.Dataset, name: str) -> xr.Dataset:
    """Rename alias dims/coords to ``time/latitude/longitude/level``; ``DataError`` naming what is missing."""
    renames: dict[str, str] = {}
    for canonical, aliases in ALIASES.items():
        # Only dims and coordinates are renamed: ERA5 names temperature 't', which must stay a variable.
        found = next((a for a in aliases if a in ds.dims or a in ds.coords), None)
        if found is not None and found != canonical:
            renames[found] = canonical
    ds = ds.rename(renames)
    # x/y dims carrying 1-D lat/lon coordinates: make the coordinates the dimensions.
    for dim, coord in (("y", "latitude"), ("x", "longitude")):
        if dim in ds.dims and coord in ds.coords and ds[coord].dims == (dim,):
            ds = ds.swap_dims({dim: coord})
    missing = [c for c in ("time", "latitude", "longitude") if c not in ds.dims]
    if missing:
        raise DataError(
            f"{name}: no {', '.join(missing)} dimension found (looked for {', '.join(ALIASES[missing[0]])}); "
            f"it has dims {', '.join(map(str, ds.dims))}: rename them in the file."
        )
    _check_time_decoded(ds, name)
    return ds


def latitude_ascending(ds: xr.Dataset) -> xr.Dataset:
    """Latitudes ascending; the source's order is recorded so that forecasts are written back in it."""
    lat = ds["latitude"].values
    ds.attrs["source_latitude_order"] = "descending" if lat.size > 1 and lat[0] > lat[-1] else "ascending"
    if ds.attrs["source_latitude_order"] == "descending":
        ds = ds.isel(latitude=slice(None, None, -1))
    return ds


def _check_time_decoded(ds: xr.Dataset, name: str) -> None:
    if ds["time"].dtype.kind in "iuf":
        raise DataError(f"{name}: its time coordinate has no CF units (like 'hours since 2000-01-01'), so the "
                        "times cannot be read; add the units attribute to the file's time variable.")


def _same_grid(reference: xr.Dataset, other: xr.Dataset, ref_path: Path, path: Path) -> None:
    for coord in ("latitude", "longitude", "level"):
        if coord not in reference.dims and coord not in other.dims:
            continue
        a = reference[coord].values if coord in reference.dims else None
        b = other[coord].values if coord in other.dims else None
        if coord == "longitude" and a is not None and b is not None:  # one grid written in two conventions
            a, b = np.sort(wrap(a, EAST)), np.sort(wrap(b, EAST))
        if not same_coordinates(a, b):
            raise DataError(
                f"{path}: its {coord} grid differs from {ref_path}'s ({_describe(b)} vs {_describe(a)}); "
                "regrid the files to one grid or prepare them separately."
            )


def same_coordinates(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Two coordinate axes are the same grid: both present, as long, equal to float tolerance."""
    return a is not None and b is not None and a.shape == b.shape and bool(np.allclose(a, b))


def _describe(values: np.ndarray | None) -> str:
    if values is None:
        return "absent"
    return f"{values.size} points {values.min():g}..{values.max():g}" if values.size else "0 points"


def _chunk_by_time(ds: xr.Dataset, chunk_mb: float) -> xr.Dataset:
    """Dask chunks of about ``chunk_mb`` along time, whole in space: reads stream, memory stays bounded."""
    step_bytes = sum(
        v.dtype.itemsize * v.size // max(v.sizes.get("time", 1), 1) for v in ds.data_vars.values() if "time" in v.dims
    )
    steps = max(1, int(chunk_mb * 2**20 // max(step_bytes, 1)))
    return ds.chunk({"time": steps})


def open_source(source: str, chunk_mb: float = 16.0) -> tuple[xr.Dataset, list[Path]]:
    """Open a file, a glob of files or a Zarr store lazily; returns the canonical dataset and its paths.

    Files of a glob are checked one by one (readable, same grid) and joined along ``time`` in time order.
    """
    paths = resolve_paths(source)
    parts = [_chunk_by_time(latitude_ascending(canonicalise(_open_one(p), str(p))), chunk_mb) for p in paths]
    convention = convention_of(parts[0]["longitude"].values)
    for k, (path, part) in enumerate(zip(paths[1:], parts[1:], strict=True), start=1):
        _same_grid(parts[0], part, paths[0], path)
        if convention_of(part["longitude"].values) != convention:
            parts[k] = apply_convention(part, convention).drop_vars("source_longitude")
        parts[k] = match_units(parts[k], parts[0], path, paths[0])
    calendar = parts[0]["time"].encoding.get("calendar", "standard")
    if len(parts) == 1:
        parts[0].attrs["calendar"] = calendar
        return parts[0], paths
    order = np.argsort([part["time"].values[0] for part in parts], kind="stable")
    ordered = [parts[i] for i in order]
    ds = xr.concat(ordered, dim="time", data_vars="minimal", coords="minimal", compat="override", join="override")
    ds.attrs = {**ordered[0].attrs, "calendar": calendar}
    log.info("opened %d files of %s: %d time steps", len(paths), source, ds.sizes["time"])
    return ds, [paths[i] for i in order]


def match_units(ds: xr.Dataset, reference: xr.Dataset, path: Path | str, reference_path: Path | str
                ) -> xr.Dataset:
    """``ds``'s variables in ``reference``'s units (°C → K, hPa → Pa, …); ``DataError`` naming both files when a
    variable's units differ and cannot be converted."""
    for name, var in ds.data_vars.items():
        if name not in reference.data_vars:
            continue
        have, want = str(var.attrs.get("units", "")), str(reference[name].attrs.get("units", ""))
        rule = conversion(have, want, f"{path}: variable '{name}' has other units than in {reference_path}")
        if rule is not None:
            scale, offset = rule
            log.info("%s: variable '%s' converted from %s to %s", path, name, have, want)
            ds[name] = (var * scale + offset).assign_attrs({**var.attrs, "units": want})
    return ds


def select_variables(ds: xr.Dataset, variables: Sequence[str], source: str) -> xr.Dataset:
    """Keep ``variables`` (in that order); ``DataError`` listing what the source has when one is missing."""
    if not variables:
        raise DataError(
            f"No variables given for {source}: set data.variables (or --variables), e.g. "
            f"--variables {','.join(list(ds.data_vars)[:2])}."
        )
    missing = [v for v in variables if v not in ds.data_vars]
    if missing:
        have = ", ".join(v for v in ds.data_vars if {"latitude", "longitude"} <= set(ds[v].dims))
        raise DataError(f"{source}: variable '{missing[0]}' not found; it has: {have or 'no gridded variables'}.")
    return ds[list(variables)]
