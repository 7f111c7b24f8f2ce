"""Calendar arithmetic on any CF calendar: regular steps of hours, days, calendar months or years, and the
position of a time in its year and day (climatology slots, forcing channels).

A month is not a duration: monthly means are stamped mid-month (``1959-01-16T12``, ``1959-02-15T00``) and
month lengths differ, so a monthly step counts months (year×12 + month) and places each new time where the
series places its stamps in the month (its ``anchor``). ``xr.infer_freq`` cannot tell (pydata/xarray#9877).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import cftime
import numpy as np
import pandas as pd

Anchor = Literal["start", "middle", "end", "same"]
ANCHORS: tuple[Anchor, ...] = ("start", "middle", "end", "same")
_DAY = pd.Timedelta(days=1)
_ZERO = pd.Timedelta(0)
_STEP = re.compile(r"^\s*(\d+)\s*(M|Y|D|h|min|s)\s*$")
YEAR_DAYS = {"360_day": 360, "noleap": 365, "365_day": 365, "all_leap": 366, "366_day": 366}


def as_cftime(time: Any, calendar: str) -> cftime.datetime:
    """A numpy/pandas/cftime time as a cftime datetime of ``calendar`` (numpy times are proleptic Gregorian)."""
    if isinstance(time, cftime.datetime):
        return time
    stamp = pd.Timestamp(time)
    return cftime.datetime(stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second,
                           calendar="proleptic_gregorian" if calendar in {"standard", "gregorian"} else calendar)


def _like(reference: Any, time: cftime.datetime) -> Any:
    """``time`` in the type of ``reference``: numpy datetime64 stays numpy, cftime stays cftime."""
    if isinstance(reference, cftime.datetime):
        return reference.__class__(time.year, time.month, time.day, time.hour, time.minute, time.second,
                                   calendar=reference.calendar, has_year_zero=reference.has_year_zero)
    return np.datetime64(pd.Timestamp(time.year, time.month, time.day, time.hour, time.minute, time.second), "ns")


def calendar_of(times: Sequence[Any] | np.ndarray) -> str:
    """The calendar of a time array: cftime's own, or proleptic Gregorian for numpy datetimes."""
    first = np.asarray(times).ravel()[0]
    return first.calendar if isinstance(first, cftime.datetime) else "proleptic_gregorian"


def month_index(times: np.ndarray) -> np.ndarray:
    """``year × 12 + month - 1`` of each time: consecutive months differ by 1 on every calendar."""
    times = np.asarray(times)
    if times.dtype.kind == "M":
        index = pd.DatetimeIndex(times)
        return np.asarray(index.year, np.int64) * 12 + np.asarray(index.month, np.int64) - 1
    return np.array([t.year * 12 + t.month - 1 for t in times], np.int64)


def _month_start(year: int, month: int, calendar: str) -> cftime.datetime:
    return cftime.datetime(year, month, 1, calendar=calendar)


def _month_bounds(time: cftime.datetime, months: int) -> tuple[cftime.datetime, cftime.datetime]:
    """Start of the month (or year, when ``months`` is a multiple of 12) holding ``time``, and of the next."""
    if months % 12 == 0:
        first = _month_start(time.year, 1, time.calendar)
        return first, _month_start(time.year + 1, 1, time.calendar)
    first = _month_start(time.year, time.month, time.calendar)
    nxt = _month_start(time.year + time.month // 12, time.month % 12 + 1, time.calendar)
    return first, nxt


def _anchor_of(time: cftime.datetime, months: int) -> Anchor | None:
    """Where ``time`` sits in its month (or year): start, middle, end, or None when it is elsewhere."""
    first, nxt = _month_bounds(time, months)
    if time == first:
        return "start"
    if abs((time - (first + (nxt - first) / 2)).total_seconds()) < 1:
        return "middle"
    last_day = nxt - _DAY.to_pytimedelta()
    if (time.year, time.month, time.day) == (last_day.year, last_day.month, last_day.day):
        return "end"
    return None


@dataclass(frozen=True)
class TimeStep:
    """A regular step: a fixed ``duration`` (``6h``, ``1D``) or a number of calendar ``months`` (``1M``, ``1Y``).

    ``anchor`` says where a monthly (yearly) series stamps its months (years): at the ``start``, the
    ``middle`` (CMIP monthly means), the last day (``end``), or the ``same`` day and time as the time it
    counts from.
    """

    duration: pd.Timedelta = _ZERO
    months: int = 0
    anchor: Anchor = "same"

    def __post_init__(self) -> None:
        if (self.months > 0) == (self.duration > _ZERO):
            raise ValueError(f"a time step is a positive duration or a positive number of months, got {self!r}")

    @classmethod
    def parse(cls, text: str, anchor: str = "same") -> TimeStep:
        """``6h``, ``30min``, ``1D``, ``360D`` (durations); ``1M``, ``3M`` (calendar months); ``1Y`` (years)."""
        match = _STEP.match(str(text))
        if match is None:
            raise ValueError(f"time step '{text}' is not a number with a unit (h, D, M for months, Y for years)")
        count, unit = int(match.group(1)), match.group(2)
        if unit in {"M", "Y"}:
            return cls(months=count * (12 if unit == "Y" else 1), anchor=anchor)  # type: ignore[arg-type]
        return cls(duration=pd.Timedelta(count, unit=unit))

    @property
    def is_calendar(self) -> bool:
        return self.months > 0

    def __str__(self) -> str:
        if self.months:
            return f"{self.months // 12}Y" if self.months % 12 == 0 else f"{self.months}M"
        if self.duration % _DAY == _ZERO:
            return f"{self.duration.days}D"
        hours = self.duration / pd.Timedelta(hours=1)
        return f"{hours:g}h" if hours == int(hours) else f"{self.duration / pd.Timedelta(minutes=1):g}min"

    @property
    def approximate_days(self) -> float:
        """The step in days, months counted as 365.25/12 days: for choosing defaults, never for valid times."""
        return self.months * 365.25 / 12 if self.months else self.duration / _DAY

    def shift(self, time: Any, steps: int) -> Any:
        """``time`` moved by ``steps`` steps (negative: back), in calendar arithmetic; same type as ``time``."""
        if not self.months:
            delta = (self.duration * steps).to_pytimedelta()
            return time + delta if isinstance(time, cftime.datetime) else (pd.Timestamp(time) + delta).to_datetime64()
        cf = as_cftime(time, calendar_of([time]))
        index = cf.year * 12 + cf.month - 1 + steps * self.months
        year, month = divmod(index, 12)
        first, nxt = _month_bounds(_month_start(year, month + 1, cf.calendar), self.months)
        if self.anchor == "start":
            placed = first
        elif self.anchor == "middle":
            placed = first + (nxt - first) / 2
        elif self.anchor == "end":
            last = nxt - _DAY.to_pytimedelta()
            placed = cftime.datetime(last.year, last.month, last.day, cf.hour, cf.minute, cf.second,
                                     calendar=cf.calendar)
        else:  # the same day (clipped to the month's length) and time of day
            days = ((_month_bounds(_month_start(year, month + 1, cf.calendar), 1)[1]
                     - _month_start(year, month + 1, cf.calendar)).days)
            placed = cftime.datetime(year, month + 1, min(cf.day, days), cf.hour, cf.minute, cf.second,
                                     calendar=cf.calendar)
        return _like(time, placed)

    def sequence(self, time: Any, count: int, first: int = 1) -> list[Any]:
        """``count`` times at ``first``, ``first + 1``, … steps after ``time`` (the valid times of leads 1..count)."""
        return [self.shift(time, first + k) for k in range(count)]

    def lead_values(self, count: int) -> tuple[list[float], str]:
        """Lead times 1..``count`` as numbers and their unit, for plots and tables: hours, days, months or years."""
        if self.months:
            if self.months % 12 == 0:
                return [self.months // 12 * (k + 1) for k in range(count)], "years"
            return [self.months * (k + 1) for k in range(count)], "months"
        unit, size = ("days", _DAY) if self.duration >= _DAY else ("hours", pd.Timedelta(hours=1))
        return [self.duration * (k + 1) / size for k in range(count)], unit

    def lead_label(self, lead: int) -> str:
        """``18h``, ``3D``, ``2M``, ``5Y``: lead ``lead`` (1-based) in the step's own unit."""
        if self.months:
            return str(TimeStep(months=self.months * lead))
        return str(TimeStep(duration=self.duration * lead))


def detect_monthly(times: np.ndarray, deltas: pd.TimedeltaIndex) -> TimeStep | None:
    """The monthly (yearly) step of ``times``, or None when the series is not monthly.

    Monthly when the typical difference is at least 28 days: the step is then the most common difference in
    calendar months, and the anchor the one every stamp agrees on (else ``same``).
    """
    if times.size < 2 or deltas.median() < pd.Timedelta(days=28):
        return None
    differences = np.diff(month_index(times))
    values, counts = np.unique(differences[differences > 0], return_counts=True)
    if values.size == 0:
        return None
    months = int(values[np.argmax(counts)])
    calendar = calendar_of(times)
    anchors = {_anchor_of(as_cftime(t, calendar), months) for t in times}
    anchor: Anchor = anchors.pop() if len(anchors) == 1 and None not in anchors else "same"  # type: ignore[assignment]
    return TimeStep(months=months, anchor=anchor)


def year_fraction(times: np.ndarray) -> np.ndarray:
    """Position of each time in its calendar year, in ``[0, 1)`` (day of year and hour over the year's length)."""
    calendar = calendar_of(times)
    out = np.empty(len(times))
    for k, time in enumerate(np.asarray(times)):
        cf = as_cftime(time, calendar)
        first, nxt = _month_bounds(cf, 12)
        out[k] = (cf - first).total_seconds() / (nxt - first).total_seconds()
    return out


def hour_of_day(times: np.ndarray) -> np.ndarray:
    """UTC hour of each time as a float (minutes included)."""
    times = np.asarray(times)
    if times.dtype.kind == "M":
        index = pd.DatetimeIndex(times)
        return np.asarray(index.hour + index.minute / 60, float)
    return np.array([t.hour + t.minute / 60 for t in times], float)


def day_of_year(times: np.ndarray) -> np.ndarray:
    """Day of year, 1-based, on each time's own calendar (360 days at most in 360_day)."""
    times = np.asarray(times)
    if times.dtype.kind == "M":
        return np.asarray(pd.DatetimeIndex(times).day_of_year, np.int64)
    return np.array([t.dayofyr for t in times], np.int64)


@dataclass(frozen=True)
class Cycles:
    """The forcing a network gets with each frame: sin/cos of the time of year (``seasonal``) and of the UTC time
    of day (``diurnal``), so that it knows where in the cycles a map and each lead sit."""

    seasonal: bool = False
    diurnal: bool = False

    @classmethod
    def natural(cls, step: TimeStep) -> Cycles:
        """The cycles a series at ``step`` resolves: the seasonal one below a year, the diurnal one below a day."""
        return cls(seasonal=step.approximate_days < 360, diurnal=step.approximate_days < 1)

    @property
    def count(self) -> int:
        return 2 * (int(self.seasonal) + int(self.diurnal))

    def features(self, times: np.ndarray) -> np.ndarray:
        """``[T, count]`` float32 forcing values of ``times``."""
        columns: list[np.ndarray] = []
        if self.seasonal:
            angle = 2 * math.pi * year_fraction(times)
            columns += [np.sin(angle), np.cos(angle)]
        if self.diurnal:
            angle = 2 * math.pi * hour_of_day(times) / 24
            columns += [np.sin(angle), np.cos(angle)]
        return np.stack(columns, axis=1).astype(np.float32) if columns else np.zeros((len(times), 0), np.float32)


NO_CYCLES = Cycles()
