"""Verification scores of gridded forecasts in physical units, streamed over batches (WeatherBench2 conventions).

Every score is kept as float64 sums per ``(lead, channel)`` and divided once in :meth:`ScoreAccumulator.result`,
so the result is the same however the samples were split into batches.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` as float64, NaN where the denominator is 0 (no warning: nothing was counted)."""
    out = np.full(np.broadcast_shapes(numerator.shape, denominator.shape), np.nan)
    return np.divide(numerator, denominator, out=out, where=denominator != 0)


class ScoreAccumulator:
    """Latitude-weighted RMSE, MAE, bias and ACC per lead and channel, plus CSI/POD/FAR per threshold and lead.

    Args:
        channels: names of the ``C`` channels, in array order.
        leads: number ``T`` of lead times; leads are numbered ``1..T``.
        lat_weights: ``[H]`` cell-area weights with mean 1.
        mask: ``[C, H, W]`` bool, True where a point is valid; invalid points weigh 0 and may hold NaN.
        thresholds: channel name -> thresholds (physical units) of the categorical scores; an event is
            ``value >= threshold``. Channels left out get no categorical scores.
    """

    def __init__(self, channels: list[str], leads: int, lat_weights: np.ndarray, mask: np.ndarray,
                 thresholds: dict[str, list[float]] | None = None):
        if lat_weights.ndim != 1:
            raise ValueError(f"lat_weights must be 1-D [H], got shape {lat_weights.shape}.")
        grid = (len(channels), lat_weights.shape[0], mask.shape[-1] if mask.ndim else 0)
        if mask.shape != grid:
            raise ValueError(f"mask shape {mask.shape} does not match [C, H, W] = {grid} "
                             f"(C from channels, H from lat_weights).")
        thresholds = thresholds or {}
        unknown = sorted(set(thresholds) - set(channels))
        if unknown:
            raise ValueError(f"thresholds name channels {unknown} that are not among {channels}.")
        self.channels = list(channels)
        self.leads = leads
        self._mask = mask.astype(bool)
        self._weights = lat_weights.astype(np.float64)[None, :, None] * self._mask  # [C, H, W]
        # One entry per (channel, threshold) pair, in channel order then the order given.
        self._events = [(name, float(t)) for name in channels for t in thresholds.get(name, [])]
        self.n_samples = 0
        self._sums = {key: np.zeros((leads, len(channels))) for key in ("weight", "sq", "abs", "err", "acc")}
        self._acc_count = np.zeros((leads, len(channels)), dtype=np.int64)
        self._table = np.zeros((3, len(self._events), leads), dtype=np.int64)  # hits, misses, false alarms

    def update(self, forecast: np.ndarray, truth: np.ndarray, climatology: np.ndarray) -> None:
        """Add a batch: ``forecast`` and ``truth`` ``[N, T, C, H, W]`` in physical units, and the climatology of each
        valid time (the ACC's reference; anything broadcasting to them, e.g. one ``[C, H, W]`` map)."""
        self._check_shapes(forecast, truth)
        f = np.asarray(forecast, dtype=np.float64)
        o = np.asarray(truth, dtype=np.float64)
        w = self._weights
        # np.where, not multiplication by w: NaN · 0 is NaN, and invalid points may hold NaN.
        err = np.where(self._mask, f - o, 0.0)
        self.n_samples += f.shape[0]
        self._sums["weight"] += f.shape[0] * w.sum(axis=(1, 2))  # [C] broadcast over leads
        self._sums["sq"] += np.einsum("ntchw,chw->tc", err**2, w)
        self._sums["abs"] += np.einsum("ntchw,chw->tc", np.abs(err), w)
        self._sums["err"] += np.einsum("ntchw,chw->tc", err, w)
        self._update_acc(f, o, np.asarray(climatology, dtype=np.float64))
        self._update_table(f, o)

    def _check_shapes(self, forecast: np.ndarray, truth: np.ndarray) -> None:
        if forecast.shape != truth.shape:
            raise ValueError(f"forecast shape {forecast.shape} differs from truth shape {truth.shape}.")
        expected = (self.leads, *self._mask.shape)
        if forecast.ndim != 5 or forecast.shape[1:] != expected:
            raise ValueError(f"forecast and truth must be [N, T, C, H, W] with [T, C, H, W] = {expected} "
                             f"(leads, channels, mask grid), got {forecast.shape}.")

    def _update_acc(self, f: np.ndarray, o: np.ndarray, climatology: np.ndarray) -> None:
        """Per-sample uncentred ACC (WeatherBench2), summed so the mean over samples is taken in ``result``."""
        w = self._weights
        fa = np.where(self._mask, f - climatology, 0.0)  # [N, T, C, H, W] anomalies, 0 where invalid
        oa = np.where(self._mask, o - climatology, 0.0)
        covariance = np.einsum("ntchw,ntchw,chw->ntc", fa, oa, w)
        scale = np.sqrt(np.einsum("ntchw,ntchw,chw->ntc", fa, fa, w) * np.einsum("ntchw,ntchw,chw->ntc", oa, oa, w))
        # A flat anomaly (e.g. the climatology forecast itself) has no correlation: that sample is not counted.
        counted = scale > 0
        self._sums["acc"] += np.where(counted, _ratio(covariance, scale), 0.0).sum(axis=0)
        self._acc_count += counted.sum(axis=0)

    def _update_table(self, f: np.ndarray, o: np.ndarray) -> None:
        for k, (name, threshold) in enumerate(self._events):
            c = self.channels.index(name)
            valid = self._mask[c]  # [H, W]
            predicted = (f[:, :, c] >= threshold) & valid  # [N, T, H, W]
            observed = (o[:, :, c] >= threshold) & valid
            self._table[0, k] += (predicted & observed).sum(axis=(0, 2, 3))
            self._table[1, k] += (~predicted & observed).sum(axis=(0, 2, 3))
            self._table[2, k] += (predicted & ~observed).sum(axis=(0, 2, 3))

    def result(self) -> xr.Dataset:
        """The scores so far.

        Layout:
            - ``rmse``, ``mae``, ``bias``, ``acc``: dims ``(lead, channel)``; ``bias`` is forecast minus truth.
            - ``hits``, ``misses``, ``false_alarms`` (int counts of valid points) and ``csi``, ``pod``, ``far``:
              dims ``(channel_threshold, lead)``, one row per configured (channel, threshold) pair, labelled by
              the coords ``threshold_channel`` (str) and ``threshold_value`` (float) along ``channel_threshold``.
              Select one channel with ``ds.where(ds.threshold_channel == "tp", drop=True)``.
            - coords ``lead`` (``1..T``), ``channel``; attribute ``n_samples``.

        Scores without anything to divide by (no valid point, no sample with a non-flat anomaly, an empty
        contingency denominator) are NaN.
        """
        s = self._sums
        hits, misses, false_alarms = self._table
        lead_channel = ("lead", "channel")
        event_lead = ("channel_threshold", "lead")
        return xr.Dataset(
            {
                "rmse": (lead_channel, np.sqrt(_ratio(s["sq"], s["weight"]))),
                "mae": (lead_channel, _ratio(s["abs"], s["weight"])),
                "bias": (lead_channel, _ratio(s["err"], s["weight"])),
                "acc": (lead_channel, _ratio(s["acc"], self._acc_count)),
                "hits": (event_lead, hits.copy()),
                "misses": (event_lead, misses.copy()),
                "false_alarms": (event_lead, false_alarms.copy()),
                "csi": (event_lead, _ratio(hits, hits + misses + false_alarms)),
                "pod": (event_lead, _ratio(hits, hits + misses)),
                "far": (event_lead, _ratio(false_alarms, hits + false_alarms)),
            },
            coords={
                "lead": np.arange(1, self.leads + 1),
                "channel": self.channels,
                "threshold_channel": ("channel_threshold", np.array([e[0] for e in self._events], dtype=str)),
                "threshold_value": ("channel_threshold", np.array([e[1] for e in self._events], dtype=np.float64)),
            },
            attrs={"n_samples": self.n_samples},
        )


def skill_score(score: xr.DataArray, reference: xr.DataArray) -> xr.DataArray:
    """``1 - score / reference`` for an error score such as RMSE: 1 is perfect, 0 no better than the reference,
    negative worse. The coordinates of both must match exactly (a silent inner join would drop leads)."""
    score, reference = xr.align(score, reference, join="exact")
    with np.errstate(divide="ignore", invalid="ignore"):  # a perfect reference gives -inf or NaN, which is the truth
        skill = 1 - score / reference
    return skill.rename(f"{score.name}_skill" if score.name is not None else None)


def _format_block(title: str, columns: dict[str, list[float]], leads: list[int], spec: str) -> str:
    width = max(9, *(len(name) for name in columns))
    lines = [title, "lead" + "".join(f"  {name:>{width}}" for name in columns)]
    for row, lead in enumerate(leads):
        cells = ("-" if math.isnan(v[row]) else format(v[row], spec) for v in columns.values())
        lines.append(f"{lead:>4}" + "".join(f"  {cell:>{width}}" for cell in cells))
    return "\n".join(lines)


def scores_table(scores: dict[str, xr.Dataset], channel: str, leads: list[int]) -> str:
    """Plain-text table of RMSE and ACC per lead for each named forecast, and the RMSE skill of the first
    forecast (the model) against each of the others (the references). NaN prints as ``-``."""
    if not scores:
        raise ValueError("scores_table needs the scores of at least one forecast, got none.")
    for name, ds in scores.items():
        if channel not in ds.channel or not set(leads) <= set(ds.lead.values.tolist()):
            raise ValueError(f"scores of {name!r} lack channel {channel!r} or leads {leads} "
                             f"(has channels {ds.channel.values.tolist()}, leads {ds.lead.values.tolist()}).")
    picked = {name: ds.sel(channel=channel, lead=leads) for name, ds in scores.items()}
    model, *references = picked
    blocks = [
        _format_block(f"RMSE {channel}", {n: ds.rmse.values.tolist() for n, ds in picked.items()}, leads, ".4g"),
        _format_block(f"ACC {channel}", {n: ds.acc.values.tolist() for n, ds in picked.items()}, leads, ".3f"),
    ]
    if references:
        skill = {ref: skill_score(picked[model].rmse, picked[ref].rmse).values.tolist() for ref in references}
        blocks.append(_format_block(f"RMSE skill of {model} vs", skill, leads, ".3f"))
    return "\n\n".join(blocks)
