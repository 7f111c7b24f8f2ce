"""Skill of a model and of the reference forecasts on one split of the store, in physical units."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from forecast.data.store import StoreInfo
from forecast.data.timeaxis import lead_hours
from forecast.data.windows import valid_starts
from forecast.evaluation.metrics import ScoreAccumulator, skill_score
from forecast.inference.init_times import select_init_times
from forecast.inference.inputs import from_store
from forecast.inference.runner import Runner

FORECASTS = ("model", "persistence", "climatology")


@dataclass
class Evaluation:
    scores: dict[str, xr.Dataset]  # per forecast: rmse, mae, bias, acc (lead, channel) and categorical scores
    lead_hours: list[float]
    maps: dict[str, tuple[np.ndarray, np.ndarray]]  # init time → (truth, forecast) [C, H, W] at the last lead

    def combined(self) -> xr.Dataset:
        """All forecasts in one dataset along ``forecast``, with lead times in hours."""
        ds = xr.concat([self.scores[name] for name in self.scores], dim=pd.Index(list(self.scores), name="forecast"))
        return ds.assign_coords(lead_hours=("lead", self.lead_hours))

    def mean_skill(self, reference: str) -> float:
        """The model's RMSE skill against ``reference``, averaged over leads and variables."""
        return float(skill_score(self.scores["model"]["rmse"], self.scores[reference]["rmse"]).mean())

    def table(self) -> pd.DataFrame:
        """Long table: forecast, channel, lead, lead_hours, rmse, mae, bias, acc."""
        ds = self.combined()[["rmse", "mae", "bias", "acc"]]
        return ds.to_dataframe().reset_index()


def evaluate(runner: Runner, info: StoreInfo, split: str, thresholds: dict[str, list[float]],
             map_dates: list[str]) -> Evaluation:
    """Stream every window of ``split`` through the model; score it, persistence and climatology alike."""
    description = runner.package.description
    input_steps, output_steps = int(description["input_steps"]), runner.output_steps
    series = from_store(info, runner)
    length = input_steps + output_steps
    starts = valid_starts(info.segment, info.split_ranges[split], length)
    climatology = runner.physical(runner.package.arrays["climatology"])
    accumulators = {name: ScoreAccumulator(info.channels, output_steps, info.lat_weights, runner.mask, climatology,
                                           thresholds) for name in FORECASTS}
    map_ends = {int(i) for spec in map_dates for i in select_init_times(spec, info.times, info.segment, input_steps)}
    if not map_ends and starts.size:  # default: the split's first forecast
        map_ends = {int(starts[0]) + input_steps - 1}
    maps = {}
    for first in tqdm(range(0, starts.size, runner.batch_size), desc=f"evaluate {split}", unit="batch", disable=None):
        batch = starts[first:first + runner.batch_size]
        windows = series.windows([int(s) + length - 1 for s in batch], length)
        x = windows[:, :input_steps]
        truth = runner.physical(windows[:, input_steps:])
        forecasts = {
            "model": runner.physical(runner.normalised(x)),
            "persistence": np.repeat(runner.physical(x[:, -1:]), output_steps, axis=1),
            "climatology": np.broadcast_to(climatology, truth.shape),
        }
        for name, values in forecasts.items():
            accumulators[name].update(values, truth)
        for k, start in enumerate(batch):
            end = int(start) + input_steps - 1
            if end in map_ends:
                maps[str(info.time_index[end])] = (truth[k, -1], forecasts["model"][k, -1])
    return Evaluation({name: acc.result() for name, acc in accumulators.items()},
                      lead_hours(description["time_step"], output_steps), maps)
