"""Skill of a model and of every reference forecast on one split of the store, in physical units: exactly what
``predict`` would serve for those init times (the same runner, inputs, context and valid times)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from forecast.data.calendar import TimeStep
from forecast.data.store import StoreInfo
from forecast.data.windows import window_inits
from forecast.evaluation.metrics import ScoreAccumulator, skill_score
from forecast.inference.init_times import select_init_times
from forecast.inference.inputs import InputSeries
from forecast.inference.runner import Runner
from forecast.verification import BEST, MODEL


@dataclass
class Evaluation:
    scores: dict[str, xr.Dataset]  # per forecast: rmse, mae, bias, acc (lead, channel) and categorical scores
    step: TimeStep
    maps: dict[str, tuple[np.ndarray, np.ndarray]]  # init time → (truth, forecast) [C, H, W] at the last lead
    notes: list[str] = field(default_factory=list)  # references that were not scored, and why

    @property
    def references(self) -> list[str]:
        return [name for name in self.scores if name != MODEL]

    def best_reference_rmse(self) -> xr.DataArray:
        """``(lead, channel)`` RMSE of the best reference at each lead and channel (their envelope)."""
        return xr.concat([self.scores[name]["rmse"] for name in self.references], dim="reference").min("reference")

    def mean_skill(self, reference: str) -> float:
        """The model's RMSE skill against ``reference`` (or ``best_reference``), averaged over leads and channels."""
        rmse = self.best_reference_rmse() if reference == BEST else self.scores[reference]["rmse"]
        return float(skill_score(self.scores[MODEL]["rmse"], rmse).mean())

    def mean_rmse(self, forecast: str) -> xr.DataArray:
        """``[channel]`` RMSE averaged over leads (the figure the targets quote)."""
        rmse = self.best_reference_rmse() if forecast == BEST else self.scores[forecast]["rmse"]
        return rmse.mean("lead")

    def combined(self) -> xr.Dataset:
        """All forecasts in one dataset along ``forecast``, with lead times in the step's unit."""
        ds = xr.concat([self.scores[name] for name in self.scores], dim=pd.Index(list(self.scores), name="forecast"))
        values, unit = self.step.lead_values(ds.sizes["lead"])
        return ds.assign_coords(lead_time=("lead", values, {"units": unit}))

    def table(self) -> pd.DataFrame:
        """Long table: forecast, channel, lead, lead_time, rmse, mae, bias, acc."""
        ds = self.combined()[["rmse", "mae", "bias", "acc"]]
        return ds.to_dataframe().reset_index()


def evaluate(runner: Runner, info: StoreInfo, series: InputSeries, split: str, thresholds: dict[str, list[float]],
             map_dates: list[str]) -> Evaluation:
    """Stream every window of ``split`` through the model and every reference; score them alike."""
    card = runner.card
    input_steps, output_steps = card.input_steps, card.output_steps
    inits = window_inits(info.segment, input_steps, output_steps, info.split_ranges[split])
    channels = info.channel_names
    accumulators: dict[str, ScoreAccumulator] = {}
    map_inits = {i for spec in map_dates for i in select_init_times(spec, info.times, info.segment, input_steps)}
    if not map_inits and inits.size:  # default: the split's first forecast
        map_inits = {int(inits[0])}
    maps = {}
    for first in tqdm(range(0, inits.size, runner.batch_size), desc=f"evaluate {split}", unit="batch", disable=None):
        batch = [int(i) for i in inits[first:first + runner.batch_size]]
        windows = series.windows([i + output_steps for i in batch], input_steps + output_steps)
        x, times = windows[:, :input_steps], series.frame_times(batch, card)
        truth = runner.physical(windows[:, input_steps:])
        climatology = runner.climatology_physical(times[:, input_steps:])
        forecasts = {MODEL: runner.forecast(x, times), **runner.references(x, times)}
        for name, values in forecasts.items():
            if name not in accumulators:
                accumulators[name] = ScoreAccumulator(channels, output_steps, info.lat_weights, runner.mask, thresholds)
            physical = runner.physical(values)
            accumulators[name].update(physical, truth, climatology)
            if name == MODEL:
                maps.update({str(info.time_index[i]): (truth[k, -1], physical[k, -1])
                             for k, i in enumerate(batch) if i in map_inits})
    notes = [f"optical_flow not scored: {runner.optical_flow_note}"] if runner.optical_flow_note else []
    return Evaluation({name: acc.result() for name, acc in accumulators.items()}, card.step, maps, notes)
