"""The time axis: regular step, gaps, and conversion of ISO periods to index ranges on any calendar."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from forecast.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimeAxis:
    """A checked time axis: its step and the contiguous segment each time step belongs to.

    ``segment[i] == segment[j]`` means steps ``i..j`` follow each other at the regular step, so a
    window may span them; a gap starts a new segment.
    """

    step: pd.Timedelta
    segment: np.ndarray  # [time] int32
    gaps: list[tuple[str, str]]


def _as_timedeltas(times: np.ndarray) -> pd.TimedeltaIndex:
    # cftime objects subtract to datetime.timedelta, numpy datetimes to timedelta64: pandas takes both.
    return pd.to_timedelta(np.asarray(times[1:] - times[:-1]))


def check_time_axis(times: np.ndarray, name: str) -> TimeAxis:
    """Check ``times`` are strictly increasing; find the step (the most common difference) and the gaps.

    Duplicates and decreasing times are errors; gaps (a difference larger than the step) are logged
    as a warning and become segment boundaries that no window crosses.
    """
    if times.size < 2:
        raise DataError(f"{name}: only {times.size} time step(s); at least input_steps + output_steps are needed.")
    deltas = _as_timedeltas(times)
    zero = pd.Timedelta(0)
    if (deltas == zero).any():
        i = int(np.argmax(deltas == zero))
        raise DataError(
            f"{name}: duplicate time {format_time(times[i])} (steps {i} and {i + 1}); "
            "remove the repeated file or steps."
        )
    if (deltas < zero).any():
        i = int(np.argmax(deltas < zero))
        raise DataError(
            f"{name}: time goes backwards at step {i + 1} ({format_time(times[i])} then "
            f"{format_time(times[i + 1])}); "
            "sort the data by time or fix the file's time axis."
        )
    step = _regular_step(times, deltas)
    breaks = np.asarray(deltas != step) if step is not None else np.zeros(deltas.size, bool)
    step = step if step is not None else deltas[0]
    gaps = [(format_time(times[i]), format_time(times[i + 1])) for i in np.flatnonzero(breaks)]
    if gaps:
        shown = "; ".join(f"{a} → {b}" for a, b in gaps[:5]) + (f"; … ({len(gaps)} in all)" if len(gaps) > 5 else "")
        log.warning(
            "%s: time step is %s but has %d gap(s): %s. Windows will not cross them.",
            name,
            format_step(step),
            len(gaps),
            shown,
        )
    segment = np.concatenate([[0], np.cumsum(breaks)]).astype(np.int32)
    return TimeAxis(step=step, segment=segment, gaps=gaps)


def _regular_step(times: np.ndarray, deltas: pd.TimedeltaIndex) -> pd.Timedelta | None:
    """The regular step, or None when the calendar makes it vary (monthly means of a standard calendar)."""
    if times.size >= 3 and xr.infer_freq(xr.DataArray(times, dims="time")) is not None and deltas.nunique() > 1:
        return None  # calendar months or years: regular in the calendar, not in seconds
    return deltas.value_counts().idxmax()


def format_time(time) -> str:
    """``2000-01-01T06:00`` for numpy datetimes and cftime objects alike (minutes are the finest step we show)."""
    if isinstance(time, np.datetime64):
        return str(np.datetime_as_string(time, unit="m"))
    return time.strftime("%Y-%m-%dT%H:%M")


def format_step(step: pd.Timedelta) -> str:
    """``6h``, ``1D``, ``360D``: the pandas-style spelling users write in configs."""
    if step % pd.Timedelta(days=1) == pd.Timedelta(0):
        return f"{step.days}D"
    return f"{step / pd.Timedelta(hours=1):g}h"


def lead_hours(time_step: str, leads: int) -> list[float]:
    """Lead times in hours of leads 1..``leads`` at the store's ``time_step`` (``6h``, ``360D``)."""
    step = pd.Timedelta(time_step) / pd.Timedelta(hours=1)
    return [step * (k + 1) for k in range(leads)]


def period_slice(index: pd.Index, start: str, end: str, what: str) -> slice:
    """Positions ``[lo, hi)`` of ``index`` inside the closed ISO period ``start..end``; ``DataError`` if empty."""
    try:
        lo, hi = index.slice_locs(start, end)
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{what}: '{start}'..'{end}' is not a valid period ({exc}); use ISO dates like 2001-01-31."
        ) from exc
    if hi <= lo:
        raise DataError(
            f"{what}: {start}..{end} lies outside the data ({index[0]} .. {index[-1]}); choose dates inside it."
        )
    return slice(int(lo), int(hi))
