"""The time axis: its regular step (a duration or calendar months), its gaps, and ISO periods as index ranges."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecast.data.calendar import TimeStep, detect_monthly, month_index
from forecast.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimeAxis:
    """A checked time axis: its step and the contiguous segment each time step belongs to.

    ``segment[i] == segment[j]`` means steps ``i..j`` follow each other at the regular step, so a
    window may span them; a gap starts a new segment.
    """

    step: TimeStep
    segment: np.ndarray  # [time] int32
    gaps: list[tuple[str, str]]


def _as_timedeltas(times: np.ndarray) -> pd.TimedeltaIndex:
    # cftime objects subtract to datetime.timedelta, numpy datetimes to timedelta64: pandas takes both.
    return pd.to_timedelta(np.asarray(times[1:] - times[:-1]))


def check_time_axis(times: np.ndarray, name: str) -> TimeAxis:
    """Check ``times`` are strictly increasing; find the step and the gaps.

    The step is calendar months (or years) when the series is monthly or coarser: month lengths then differ,
    a missing month is a gap. Otherwise it is the most common difference. Duplicates and decreasing times are
    errors; gaps are logged as a warning and become segment boundaries that no window crosses.
    """
    if times.size < 2:
        raise DataError(f"{name}: only {times.size} time step(s); a forecast needs a series of maps.")
    deltas = _as_timedeltas(times)
    zero = pd.Timedelta(0)
    if (deltas == zero).any():
        i = int(np.argmax(deltas == zero))
        raise DataError(f"{name}: duplicate time {format_time(times[i])} (steps {i} and {i + 1}); "
                        "remove the repeated file or steps.")
    if (deltas < zero).any():
        i = int(np.argmax(deltas < zero))
        raise DataError(f"{name}: time goes backwards at step {i + 1} ({format_time(times[i])} then "
                        f"{format_time(times[i + 1])}); sort the data by time or fix the file's time axis.")
    step = detect_monthly(times, deltas)
    if step is not None:
        differences = np.diff(month_index(times))
        if (differences == 0).any():
            i = int(np.argmax(differences == 0))
            raise DataError(f"{name}: two maps in one month ({format_time(times[i])} and {format_time(times[i + 1])}) "
                            f"in a monthly series; remove one of them.")
        breaks = np.asarray(differences != step.months)
    else:
        step = TimeStep(duration=deltas.value_counts().idxmax())
        breaks = np.asarray(deltas != step.duration)
    gaps = [(format_time(times[i]), format_time(times[i + 1])) for i in np.flatnonzero(breaks)]
    if gaps:
        log.warning("%s: time step is %s but has %d gap(s): %s. Windows will not cross them.", name, step,
                    len(gaps), describe_gaps(gaps))
    segment = np.concatenate([[0], np.cumsum(breaks)]).astype(np.int32)
    return TimeAxis(step=step, segment=segment, gaps=gaps)


def describe_gaps(gaps: list[tuple[str, str]], shown: int = 5) -> str:
    """``a → b; c → d; … (12 in all)``: the first few gaps of a list."""
    text = "; ".join(f"{a} → {b}" for a, b in gaps[:shown])
    return text + (f"; … ({len(gaps)} in all)" if len(gaps) > shown else "")


def format_time(time) -> str:
    """``2000-01-01T06:00`` for numpy datetimes and cftime objects alike (minutes are the finest step we show)."""
    if isinstance(time, np.datetime64):
        return str(np.datetime_as_string(time, unit="m"))
    return time.strftime("%Y-%m-%dT%H:%M")


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
