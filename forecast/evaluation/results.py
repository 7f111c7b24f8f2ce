"""Scores as WeatherBench2 lays out its results: one variable per forecast variable, over ``metric``, ``region`` and
``lead_time``; here also over ``forecast`` (the model and every reference), with CF attributes."""

from __future__ import annotations

import numpy as np
import xarray as xr

from forecast.data.calendar import TimeStep
from forecast.data.store import ChannelMeta

METRICS = ("rmse", "mae", "bias", "acc")
LONG_NAMES = {"rmse": "latitude-weighted root mean square error", "mae": "latitude-weighted mean absolute error",
              "bias": "latitude-weighted mean error (forecast minus truth)",
              "acc": "anomaly correlation coefficient against the per-slot climatology (dimensionless)"}


def lead_time_coordinate(step: TimeStep, count: int) -> xr.Variable:
    """``lead_time``: timedeltas for a fixed step (as WeatherBench2), whole months or years for a calendar step."""
    if not step.is_calendar:
        values = (np.arange(1, count + 1) * step.duration.to_timedelta64()).astype("timedelta64[ns]")
        return xr.Variable("lead_time", values, {"long_name": "lead time", "standard_name": "forecast_period"})
    numbers, unit = step.lead_values(count)
    return xr.Variable("lead_time", np.asarray(numbers, np.int32),
                       {"long_name": "lead time", "standard_name": "forecast_period", "units": unit})


def wb2_results(scores: dict[str, xr.Dataset], step: TimeStep, channels: list[ChannelMeta],
                attrs: dict[str, str]) -> xr.Dataset:
    """The scores of every forecast (``ScoreAccumulator.result`` datasets) in one WeatherBench2-shaped dataset."""
    forecasts = list(scores)
    leads = next(iter(scores.values())).sizes["lead"]
    data_vars = {}
    for channel in channels:
        values = np.stack([np.stack([scores[f][metric].sel(channel=channel.name).values for metric in METRICS])
                           for f in forecasts])[:, :, None]  # [forecast, metric, region, lead_time]
        data_vars[channel.name] = xr.Variable(
            ("forecast", "metric", "region", "lead_time"), values,
            {"units": channel.units, "long_name": f"scores of {channel.long_name or channel.name}",
             "comment": "rmse, mae and bias in the variable's units; acc dimensionless"})
    coords = {
        "forecast": xr.Variable("forecast", np.array(forecasts, dtype=object), {"long_name": "forecast scored"}),
        "metric": xr.Variable("metric", np.array(METRICS, dtype=object),
                              {"long_name": "verification metric", "flag_meanings": " ".join(METRICS),
                               "comment": "; ".join(f"{k}: {v}" for k, v in LONG_NAMES.items())}),
        "region": xr.Variable("region", np.array(["domain"], dtype=object), {"long_name": "the whole grid"}),
        "lead_time": lead_time_coordinate(step, leads),
    }
    first = next(iter(scores.values()))
    if first.sizes.get("channel_threshold"):
        for name, text in (("csi", "critical success index"), ("pod", "probability of detection"),
                           ("far", "false alarm ratio")):
            values = np.stack([scores[f][name].values for f in forecasts])  # [forecast, threshold, lead_time]
            data_vars[name] = xr.Variable(("forecast", "threshold", "lead_time"), values,
                                          {"units": "1", "long_name": f"{text} of value >= threshold"})
        coords["threshold_channel"] = xr.Variable("threshold", first["threshold_channel"].values.astype(object))
        coords["threshold_value"] = xr.Variable("threshold", first["threshold_value"].values,
                                                {"long_name": "event threshold, in the channel's units"})
    n_samples = int(first.attrs.get("n_samples", 0))
    return xr.Dataset(data_vars, coords, {"Conventions": "CF-1.8", "title": "forecast verification scores",
                                          "n_forecasts": n_samples, **attrs})
