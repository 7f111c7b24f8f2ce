"""Longitude conventions: the one in which a grid is contiguous, and whether it is periodic (global).

A regional grid across 0° (the Mediterranean, −6…37°E) is whole in ``[-180, 180)`` and cut in two in
``[0, 360)``; one across the dateline (the tropical Pacific) is the other way round. A grid that spans all
360° is periodic: its first and last columns are neighbours, and convolutions wrap around.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

EAST, CENTRED = "[0, 360)", "[-180, 180)"
CONVENTIONS = (EAST, CENTRED)


def wrap(longitude: np.ndarray, convention: str) -> np.ndarray:
    """``longitude`` (degrees east, any convention) expressed in ``convention``."""
    longitude = np.asarray(longitude, dtype=np.float64)
    if convention == CENTRED:
        return np.mod(longitude + 180.0, 360.0) - 180.0
    return np.mod(longitude, 360.0)


def convention_of(longitude: np.ndarray) -> str:
    """The convention a source writes its longitudes in (negative values mean ``[-180, 180)``)."""
    return CENTRED if np.asarray(longitude).size and float(np.min(longitude)) < 0 else EAST


def _spacing(sorted_longitude: np.ndarray) -> float:
    return float(np.median(np.diff(sorted_longitude))) if sorted_longitude.size > 1 else 360.0


def _contiguous(sorted_longitude: np.ndarray) -> bool:
    """No step between neighbours larger than 1.5 grid spacings (a seam would be one)."""
    if sorted_longitude.size < 2:
        return True
    return bool(np.diff(sorted_longitude).max() <= 1.5 * _spacing(sorted_longitude))


def is_global(longitude: np.ndarray) -> bool:
    """The grid goes all the way round: regular spacing, and the step from the last column back to the first
    (across the seam) is one spacing too."""
    east = np.sort(wrap(longitude, EAST))
    if east.size < 3 or not _contiguous(east):
        return False
    return bool(abs(east[0] + 360.0 - east[-1] - _spacing(east)) <= 0.5 * _spacing(east))


def choose_convention(longitude: np.ndarray) -> str:
    """``[0, 360)`` for global grids and regional ones contiguous there, else ``[-180, 180)`` when the grid is
    contiguous in it (it crosses 0°); ``[0, 360)`` for a grid with holes in both."""
    if is_global(longitude) or _contiguous(np.sort(wrap(longitude, EAST))):
        return EAST
    return CENTRED if _contiguous(np.sort(wrap(longitude, CENTRED))) else EAST


def apply_convention(ds: xr.Dataset, convention: str) -> xr.Dataset:
    """``ds`` with longitudes in ``convention``, sorted increasing; the source's values ride along as the
    ``source_longitude`` coordinate (set once, the first time a dataset passes here)."""
    lon = ds["longitude"]
    if "source_longitude" not in ds.coords:
        ds = ds.assign_coords(source_longitude=("longitude", lon.values.astype(np.float64)))
    wrapped = wrap(lon.values, convention)
    if not np.array_equal(wrapped, lon.values):
        ds = ds.assign_coords(longitude=("longitude", wrapped, lon.attrs))
    if not ds.indexes["longitude"].is_monotonic_increasing:
        ds = ds.sortby("longitude")
    ds.attrs["longitude_convention"] = convention
    return ds


def in_box(longitude: np.ndarray, west: float, east: float) -> np.ndarray:
    """Columns inside the box from ``west`` eastwards to ``east`` (any convention; ``west > east`` wraps)."""
    width = 360.0 if east - west >= 360.0 else np.mod(east - west, 360.0)
    return np.mod(np.asarray(longitude, np.float64) - west, 360.0) <= width + 1e-9
