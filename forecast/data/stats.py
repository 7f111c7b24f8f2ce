"""Normalisation statistics, climatology and validity mask, computed lazily on the training period only."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import xarray as xr

from forecast.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Statistics:
    """Per-channel mean/std (physical units), per-point climatology (normalised) and validity of the training period."""

    mean: np.ndarray  # [C] float64
    std: np.ndarray  # [C] float64
    climatology: np.ndarray  # [C, H, W] float32, normalised units, 0 where invalid
    valid: np.ndarray  # [C, H, W] bool: the point has data in the training period (False over land for SST)


def statistics_graph(train: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """Lazy per-point count, sum and sum of squares over time (float64), for one shared dask pass."""
    data = train.astype(np.float64)
    return data.notnull().sum("time"), data.sum("time", skipna=True), (data * data).sum("time", skipna=True)


def finish_statistics(
    count: np.ndarray, total: np.ndarray, squares: np.ndarray, channels: list[str], name: str
) -> Statistics:
    """Reduce the per-point sums to per-channel statistics; ``DataError`` for a channel with no data at all."""
    per_channel = count.sum(axis=(1, 2))
    empty = [c for c, n in zip(channels, per_channel, strict=True) if n == 0]
    if empty:
        raise DataError(
            f"{name}: variable '{empty[0]}' is entirely NaN in the training period; "
            "check the file's _FillValue/missing_value or drop the variable."
        )
    mean = total.sum(axis=(1, 2)) / per_channel
    variance = squares.sum(axis=(1, 2)) / per_channel - mean**2
    std = np.sqrt(np.clip(variance, 0.0, None))
    constant = std <= 1e-12 * np.maximum(np.abs(mean), 1.0)
    for channel in np.asarray(channels)[constant]:
        log.warning("%s: channel '%s' is constant in the training period; it is normalised with std 1.", name, channel)
    std = np.where(constant, 1.0, std)
    valid = count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        point_mean = total / count
    climatology = np.where(valid, (point_mean - mean[:, None, None]) / std[:, None, None], 0.0)
    return Statistics(mean=mean, std=std, climatology=climatology.astype(np.float32), valid=valid)


def normalise(fields: xr.DataArray, stats: Statistics) -> xr.DataArray:
    """Physical → normalised float32 with NaN filled by the mean (0), so no NaN ever reaches a tensor."""
    mean = xr.DataArray(stats.mean, dims="channel")
    std = xr.DataArray(stats.std, dims="channel")
    return ((fields - mean) / std).fillna(0.0).astype(np.float32)


def denormalise(values: np.ndarray, mean: np.ndarray, std: np.ndarray, channel_axis: int) -> np.ndarray:
    """Normalised → physical units; ``mean``/``std`` ``[C]`` broadcast along ``channel_axis``."""
    shape = [1] * values.ndim
    shape[channel_axis] = -1
    return values * std.reshape(shape) + mean.reshape(shape)
