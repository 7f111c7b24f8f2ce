"""Normalisation statistics, per-slot climatology and validity mask of the training period, and the one
normalise/denormalise pair every stage uses."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from forecast.data.climatology import Slots, slot_means
from forecast.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Statistics:
    """Per-channel mean/std (physical units), per-slot climatology (normalised) and validity of the training
    period."""

    mean: np.ndarray  # [C] float64
    std: np.ndarray  # [C] float64
    climatology: np.ndarray  # [S, C, H, W] float32, normalised units, 0 where invalid
    valid: np.ndarray  # [C, H, W] bool: the point has data in the training period (False over land for SST)


class StatisticsAccumulator:
    """Sums per slot and per point over blocks of the training period, reduced once at the end.

    Float64 sums keep the mean exact to ~1e-12 whatever the order of the blocks; counts skip missing values.
    """

    def __init__(self, slots: Slots, shape: tuple[int, int, int]):
        self.slots = slots
        self.sums = np.zeros((slots.count, *shape))
        self.counts = np.zeros((slots.count, *shape), np.int64)
        self.squares = np.zeros(shape)

    def add(self, block: np.ndarray, slot: np.ndarray) -> None:
        """``block`` ``[t, C, H, W]`` physical units (NaN missing); ``slot`` ``[t]`` its climatology slots."""
        valid = np.isfinite(block)
        values = np.where(valid, block, 0.0).astype(np.float64)
        self.squares += (values * values).sum(axis=0)
        for s in np.unique(slot):
            at = slot == s
            self.sums[s] += values[at].sum(axis=0)
            self.counts[s] += valid[at].sum(axis=0)

    def finish(self, channels: list[str], name: str) -> Statistics:
        """Per-channel mean and std, per-slot climatology; ``DataError`` for a channel with no data at all."""
        count = self.counts.sum(axis=0)  # [C, H, W]
        total = self.sums.sum(axis=0)
        per_channel = count.sum(axis=(1, 2))
        empty = [c for c, n in zip(channels, per_channel, strict=True) if n == 0]
        if empty:
            raise DataError(f"{name}: variable '{empty[0]}' is entirely NaN in the training period; "
                            "check the file's _FillValue/missing_value or drop the variable.")
        mean = total.sum(axis=(1, 2)) / per_channel
        variance = self.squares.sum(axis=(1, 2)) / per_channel - mean**2
        std = np.sqrt(np.clip(variance, 0.0, None))
        constant = std <= 1e-12 * np.maximum(np.abs(mean), 1.0)
        for channel in np.asarray(channels)[constant]:
            log.warning("%s: channel '%s' is constant in the training period; it is normalised with std 1.", name,
                        channel)
        std = np.where(constant, 1.0, std)
        valid = count > 0
        physical = slot_means(self.sums, self.counts, self.slots, name)  # [S, C, H, W]
        climatology = np.where(valid[None], normalise(physical, mean, std, channel_axis=1), 0.0)
        return Statistics(mean=mean, std=std, climatology=climatology.astype(np.float32), valid=valid)


def _along(values: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    shape = [1] * ndim
    shape[axis] = -1
    return np.asarray(values).reshape(shape)


def normalise(values: np.ndarray, mean: np.ndarray, std: np.ndarray, channel_axis: int) -> np.ndarray:
    """Physical → normalised; ``mean``/``std`` ``[C]`` broadcast along ``channel_axis`` (NaN stays NaN).

    Works on numpy arrays and, lazily, on xarray/dask arrays alike."""
    return (values - _along(mean, values.ndim, channel_axis)) / _along(std, values.ndim, channel_axis)


def denormalise(values: np.ndarray, mean: np.ndarray, std: np.ndarray, channel_axis: int) -> np.ndarray:
    """Normalised → physical units; ``mean``/``std`` ``[C]`` broadcast along ``channel_axis``."""
    return values * _along(std, values.ndim, channel_axis) + _along(mean, values.ndim, channel_axis)
