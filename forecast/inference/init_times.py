"""Which init times to forecast: ``latest``, one ISO time, or a range ``START/END``; each needs a full input window."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from forecast.data.timeaxis import format_time
from forecast.data.windows import window_inits
from forecast.errors import DataError

log = logging.getLogger(__name__)


def _time_like(index: pd.Index, text: str):
    """``text`` as a value comparable with ``index`` (numpy datetimes or cftime objects of its calendar)."""
    if isinstance(index, pd.DatetimeIndex):
        return pd.Timestamp(text)
    first = index[0]
    stamp = pd.Timestamp(text)
    return type(first)(stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, calendar=first.calendar)


def select_init_times(spec: str, times: np.ndarray, segment: np.ndarray, input_steps: int) -> list[int]:
    """Positions on ``times`` to forecast from, in time order; ``DataError`` naming what is missing otherwise."""
    index = pd.Index(times)
    ok = window_inits(segment, input_steps)
    if spec == "latest":
        if ok.size == 0:
            raise DataError(f"the input data ({len(times)} steps) holds no {input_steps} gap-free steps: "
                            "no init time has enough history.")
        if ok[-1] != len(times) - 1:
            log.warning("the newest map (%s) cannot start a forecast: its input window has a missing map or a gap; "
                        "forecasting from %s, the latest init time with %d whole input maps.",
                        format_time(times[-1]), format_time(times[int(ok[-1])]), input_steps)
        return [int(ok[-1])]
    start_text, sep, end_text = spec.partition("/")
    try:
        start = _time_like(index, start_text)
        end = _time_like(index, end_text) if sep else start
    except ValueError as exc:
        raise DataError(f"init time '{spec}' is not 'latest', an ISO time or START/END ({exc}).") from exc
    wanted = np.flatnonzero((index >= start) & (index <= end))
    if wanted.size == 0:
        what = f"init time {start_text} is not a time" if not sep else f"no time in {spec} is a time"
        raise DataError(f"{what} of the input data ({format_time(times[0])} … {format_time(times[-1])}); "
                        "pick times inside it or use 'latest'.")
    chosen = sorted(set(wanted.tolist()) & set(ok.tolist()))
    if not chosen:
        first = format_time(times[int(wanted[0])]) if wanted.size else start_text
        raise DataError(f"init time {first} needs {input_steps} input maps without a gap or a missing map up to it; "
                        f"the input data starts at {format_time(times[0])}. Pick another init time.")
    return chosen
