"""Checks of the values themselves: undeclared fill values, physically absurd magnitudes, missing maps.

A fill value a file does not declare (``-999`` over land, ``1e30`` after a regrid) looks like data to every
reader; averaged in, it ruins the statistics without a word. It shows as a value repeated at an extreme of a
variable's sample, far from everything else, or as a magnitude no geophysical field reaches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import xarray as xr

from forecast.errors import DataError

log = logging.getLogger(__name__)
ABSURD = 1e20  # beyond any geophysical value in SI-like units; netCDF's default fill is 9.97e36
SAMPLE_MAPS = 48  # maps sampled across the training period to learn each variable's range
DOMINANT = 0.5  # share of flagged values above which a variable is an error, not a warning


@dataclass(frozen=True)
class ValueBounds:
    """Per channel, the plausible range ``[lo, hi]`` and the fill value detected (NaN when none)."""

    lo: np.ndarray  # [C]
    hi: np.ndarray  # [C]
    fill: np.ndarray  # [C]

    def _dims(self, values: np.ndarray) -> xr.DataArray:
        return xr.DataArray(values, dims="channel")

    def plausible(self, fields: xr.DataArray) -> xr.DataArray:
        """Lazy bool ``[time, channel, lat, lon]``: finite and neither absurd, out of range nor the fill."""
        lo, hi, fill = self._dims(self.lo), self._dims(self.hi), self._dims(self.fill)
        return (fields >= lo) & (fields <= hi) & (abs(fields) < ABSURD) & (fields != fill)

    def screen(self, fields: xr.DataArray) -> xr.DataArray:
        """``fields`` with implausible values as NaN (missing), lazily."""
        return fields.where(self.plausible(fields))

    def flagged(self, fields: xr.DataArray) -> xr.DataArray:
        """Lazy ``[channel]`` count of finite values that ``screen`` turns into NaN."""
        return (fields.notnull() & ~self.plausible(fields)).sum(("time", "latitude", "longitude"))


def _isolated_fill(values: np.ndarray, end: int) -> float:
    """The value at one end of sorted ``values`` (``end`` 0 or -1) when it repeats and stands far apart from the
    rest (a gap of more than twice the rest's spread): an undeclared fill. NaN when there is none."""
    candidate = values[end]
    rest = values[values != candidate]
    if rest.size < 10 or (values == candidate).sum() < max(2, values.size // 1000):
        return np.nan
    q_lo, q_hi = np.quantile(rest, [0.001, 0.999])
    gap = (rest.min() - candidate) if end == 0 else (candidate - rest.max())
    return float(candidate) if gap > 2 * max(q_hi - q_lo, 1e-12) else np.nan


def value_bounds(sample: np.ndarray, channels: list[str], name: str, spread: float) -> ValueBounds:
    """Learn each channel's plausible range from ``sample`` ``[k, C, H, W]`` (physical units, NaN missing).

    The range is the 0.1–99.9 % quantiles widened by ``spread`` times their distance (``spread`` 0: no range
    check); a channel without any valid value in the sample gets no range. ``DataError`` when implausible
    values dominate a channel.
    """
    n_channels = sample.shape[1]
    lo, hi, fill = np.full(n_channels, -np.inf), np.full(n_channels, np.inf), np.full(n_channels, np.nan)
    for c, channel in enumerate(channels):
        values = sample[:, c].ravel()
        values = np.sort(values[np.isfinite(values)])
        if values.size == 0:
            continue  # whether it has any data at all, the statistics of the whole training period tell
        sane = values[np.abs(values) < ABSURD]
        for end in (0, -1):
            if sane.size and np.isnan(fill[c]):
                fill[c] = _isolated_fill(sane, end)
        kept = sane[sane != fill[c]] if not np.isnan(fill[c]) else sane
        if kept.size and spread > 0:
            q_lo, q_hi = np.quantile(kept, [0.001, 0.999])
            width = max(q_hi - q_lo, 1e-6 * max(abs(q_lo), abs(q_hi), 1.0))
            lo[c], hi[c] = q_lo - spread * width, q_hi + spread * width
        bad = values.size - int(((kept >= lo[c]) & (kept <= hi[c])).sum())
        if bad > DOMINANT * values.size:
            raise DataError(f"{name}: {bad / values.size:.0%} of variable '{channel}''s sampled values are "
                            f"implausible ({_what(values, fill[c], lo[c], hi[c])}): an undeclared fill value? "
                            "Declare it as _FillValue or missing_value in the files.")
    return ValueBounds(lo, hi, fill)


def _what(values: np.ndarray, fill: float, lo: float, hi: float) -> str:
    parts = []
    if not np.isnan(fill):
        parts.append(f"{fill:g} repeated")
    if np.isfinite(lo) or np.isfinite(hi):
        parts.append(f"beyond [{lo:.4g}, {hi:.4g}]")
    if (np.abs(values) >= ABSURD).any():
        parts.append(f"|value| ≥ {ABSURD:g}")
    return ", ".join(parts) or "none"


def report_flagged(flagged: np.ndarray, total: np.ndarray, bounds: ValueBounds, channels: list[str], name: str,
                   units: list[str]) -> None:
    """Warn, per channel, how many values were implausible and became missing; ``DataError`` when they dominate."""
    for c, channel in enumerate(channels):
        if not flagged[c]:
            continue
        share = flagged[c] / max(total[c], 1)
        detail = _what(np.array([]), bounds.fill[c], bounds.lo[c], bounds.hi[c])
        if share > DOMINANT:
            raise DataError(f"{name}: {share:.0%} of variable '{channel}''s values are implausible ({detail} "
                            f"{units[c]}); declare the fill value as _FillValue or missing_value in the files.")
        log.warning("%s: %d value(s) (%.2g%%) of '%s' look like an undeclared fill value or are physically absurd "
                    "(%s %s): treated as missing. Declare _FillValue in the files to silence this.", name,
                    int(flagged[c]), 100 * share, channel, detail, units[c])


def sample_positions(start: int, stop: int, count: int = SAMPLE_MAPS) -> np.ndarray:
    """``count`` positions spread evenly over ``[start, stop)`` (all of them when there are fewer)."""
    return np.unique(np.linspace(start, stop - 1, min(count, stop - start)).round().astype(int))


def missing_maps(missing_share: np.ndarray, threshold: float) -> np.ndarray:
    """Time positions whose map misses more than ``threshold`` of its valid points in any channel
    (``missing_share`` ``[time, channel]``); those become gaps instead of mean-filled maps."""
    return np.flatnonzero((missing_share > threshold).any(axis=1))


def without_maps(segment: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``segment`` with the maps at ``positions`` cut out: each becomes a run of its own (a negative label), so
    that no window includes it, and the maps on either side belong to different runs."""
    if positions.size == 0:
        return segment
    breaks = np.zeros(segment.size, bool)  # a break before position i starts a new run
    breaks[1:] = np.diff(segment) != 0
    breaks[positions] = True
    breaks[np.minimum(positions + 1, segment.size - 1)] = True
    out = np.cumsum(breaks).astype(np.int32)
    out[positions] = -1 - np.arange(positions.size)
    return out
