"""Climatology per calendar slot, as WeatherBench2 computes it: day of year × hour of day for daily and
sub-daily data (smoothed over a window of days), month of year for monthly data, one map for yearly data.

Slots are counted on each time's own calendar (360 days in ``360_day``, 365 in ``noleap``, 366 otherwise: 29
February is day 60 of a leap year, as in WeatherBench2).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecast.data.calendar import YEAR_DAYS, TimeStep, calendar_of, day_of_year, hour_of_day, month_index

log = logging.getLogger(__name__)
SLOT_KINDS = ("dayofyear_hour", "month", "none")
SMOOTHING_DAYS = 61  # WeatherBench2's window for its day-of-year climatology


@dataclass(frozen=True)
class Slots:
    """How times map to climatology slots: ``kind`` and, for ``dayofyear_hour``, ``per_day`` hour slots on a
    calendar of ``year_days`` days."""

    kind: str
    per_day: int = 1
    year_days: int = 366

    @classmethod
    def for_series(cls, step: TimeStep, times: np.ndarray) -> Slots:
        """The WeatherBench2 choice for a series: day × hour below a month, month below a year, else none."""
        if step.is_calendar:
            return cls("month") if step.months < 12 else cls("none")
        per_day = max(1, round(pd.Timedelta(days=1) / step.duration)) if step.duration < pd.Timedelta(days=1) else 1
        return cls("dayofyear_hour", min(per_day, 24), YEAR_DAYS.get(calendar_of(times), 366))

    @property
    def count(self) -> int:
        return {"dayofyear_hour": self.year_days * self.per_day, "month": 12, "none": 1}[self.kind]

    def of(self, times: np.ndarray) -> np.ndarray:
        """``[T]`` int slot of each time."""
        times = np.asarray(times)
        if self.kind == "none":
            return np.zeros(times.size, np.int64)
        if self.kind == "month":
            return month_index(times) % 12
        hour_slot = np.floor(hour_of_day(times) * self.per_day / 24).astype(np.int64)
        return (np.minimum(day_of_year(times), self.year_days) - 1) * self.per_day + hour_slot

    def describe(self) -> str:
        return {"dayofyear_hour": f"day of year × {self.per_day} hour(s) of day", "month": "month of year",
                "none": "one map (yearly data)"}[self.kind]


def slot_means(sums: np.ndarray, counts: np.ndarray, slots: Slots, name: str) -> np.ndarray:
    """Per-slot means ``[S, C, H, W]`` (float64, NaN where a point never has data) from per-slot sums and counts.

    Day-of-year slots are smoothed with a circular window of ``SMOOTHING_DAYS`` days per hour of day; slots
    still empty (a training period shorter than a year) fall back to that hour's all-year mean, then to the
    point's overall mean.
    """
    sums, counts = sums.astype(np.float64), counts.astype(np.float64)
    overall = _ratio(sums.sum(axis=0), counts.sum(axis=0))  # [C, H, W]
    if slots.kind == "dayofyear_hour":
        shape = (slots.year_days, slots.per_day, *sums.shape[1:])
        days_sum, days_count = _circular_window(sums.reshape(shape)), _circular_window(counts.reshape(shape))
        hourly = _ratio(sums.reshape(shape).sum(axis=0), counts.reshape(shape).sum(axis=0))  # [per_day, C, H, W]
        empty = days_count.sum(axis=tuple(range(2, days_count.ndim))) == 0  # [days, per_day]
        if empty.any():
            log.warning("%s: the training period covers %d of %d days of the year (±%d days): the other days' "
                        "climatology is the all-year mean of their hour of day.", name,
                        int((~empty).any(axis=1).sum()), slots.year_days, SMOOTHING_DAYS // 2)
        means = np.where(days_count > 0, _ratio(days_sum, days_count), hourly[None])
        means = means.reshape(sums.shape)
    else:
        means = _ratio(sums, counts)
    return np.where(np.isnan(means), overall[None], means)


def _circular_window(values: np.ndarray) -> np.ndarray:
    """Sum over a centred window of ``SMOOTHING_DAYS`` along axis 0, wrapping round the year."""
    half = min(SMOOTHING_DAYS // 2, (values.shape[0] - 1) // 2)
    padded = np.concatenate([values[-half:], values, values[:half]]) if half else values
    cumulative = np.concatenate([np.zeros_like(values[:1]), np.cumsum(padded, axis=0)])
    return cumulative[2 * half + 1:] - cumulative[: values.shape[0]]


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.full(np.broadcast_shapes(numerator.shape, denominator.shape), np.nan)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)
