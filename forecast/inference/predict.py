"""Batch forecasts: one CF NetCDF file per init time, skipped when done, written atomically; a range also as one
WeatherBench2-layout Zarr store."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

import forecast
from forecast.data.timeaxis import format_time
from forecast.errors import ModelError
from forecast.inference.inputs import InputSeries
from forecast.inference.output import Grid, forecast_dataset, forecast_file_name, write_netcdf, write_zarr
from forecast.inference.runner import Runner


@dataclass
class PredictResult:
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    zarr: Path | None = None
    model_seconds: float = 0.0
    total_seconds: float = 0.0

    @property
    def share_outside_model(self) -> float:
        """Share of the run spent reading inputs and building and writing files rather than in the model."""
        return 1 - self.model_seconds / max(self.total_seconds, 1e-9)


MAX_NAN_SHARE = 0.001  # of the valid points of a forecast: beyond it, something upstream is broken


def check_finite(y: np.ndarray, mask: np.ndarray, init_times: list) -> None:
    """Refuse forecasts ``[N, T, C, H, W]`` that are NaN where the model has data: a damaged package or input
    must not become a file that looks like a forecast."""
    valid = np.broadcast_to(mask, y.shape[-3:])
    for k, init in enumerate(init_times):
        share = float(np.isnan(y[k][:, valid]).mean()) if valid.any() else 0.0
        if share > MAX_NAN_SHARE:
            raise ModelError(f"the forecast from {format_time(init)} is NaN at {share:.1%} of the points where the "
                             "model has data; nothing was written. Check the model package (its statistics) and "
                             "the input maps.")


def catch_up(latest: int, candidates: list[int], times: np.ndarray, output_dir: Path, prefix: str) -> list[int]:
    """``latest`` plus every init time since the newest file already in ``output_dir``: a cron job that missed
    runs fills the hole on its next run."""
    own = re.compile(rf"{re.escape(prefix)}_\d{{8}}T\d{{4}}\.nc")  # not another experiment's prefix_more_*.nc
    done = sorted(p.name for p in output_dir.glob(f"{prefix}_*.nc") if own.fullmatch(p.name))
    if not done:
        return [latest]
    return [i for i in candidates if forecast_file_name(prefix, times[i]) > done[-1] and i <= latest] or [latest]


def predict(runner: Runner, series: InputSeries, inits: list[int], output_dir: Path, prefix: str,
            attrs: dict[str, str], overwrite: bool = False, zarr: bool = False) -> PredictResult:
    """Forecast from each init position of ``series``; files already there are kept unless ``overwrite``."""
    started = time.perf_counter()
    card, arrays = runner.card, runner.package.arrays
    grid = Grid(arrays["latitude"], arrays["source_longitude"], card.source_latitude_order == "descending")
    attrs = {**attrs, "forecast_version": forecast.__version__, "input_data": series.origin,
             "input_data_checksum": series.checksum, "created": datetime.now(UTC).isoformat(timespec="seconds")}
    result = PredictResult()
    paths = {i: output_dir / forecast_file_name(prefix, series.times[i]) for i in inits}
    pending = [i for i in inits if overwrite or not paths[i].exists()]
    result.skipped = [paths[i] for i in inits if i not in pending]
    with tqdm(total=len(pending), desc="forecasts", unit="init", disable=None) as bar:
        for start in range(0, len(pending), runner.batch_size):
            batch = pending[start:start + runner.batch_size]
            x = series.windows(batch, card.input_steps)
            times = series.frame_times(batch, card)
            model_started = time.perf_counter()
            y = runner.physical(runner.forecast(x, times))
            result.model_seconds += time.perf_counter() - model_started
            check_finite(y, runner.mask, [series.times[i] for i in batch])
            for k, i in enumerate(batch):
                ds = forecast_dataset(y[k:k + 1], [series.times[i]], card.step, card.channels, grid, attrs)
                write_netcdf(ds, paths[i])
                result.written.append(paths[i])
            bar.update(len(batch))
    if zarr and len(inits) > 1:
        result.zarr = output_dir / f"{Path(paths[inits[0]].stem)}_to_{paths[inits[-1]].stem.split('_')[-1]}.zarr"
        parts = [xr.open_dataset(paths[i], decode_timedelta=True) for i in inits]
        try:
            combined = xr.concat(parts, dim="time", data_vars="minimal", coords="minimal", compat="override")
            for name in ("time", "valid_time"):  # keep one calendar-aware encoding for the whole store
                encoding = parts[0][name].encoding
                combined[name].encoding = {k: v for k, v in encoding.items() if k in {"units", "calendar"}}
            write_zarr(combined.load(), result.zarr)
        finally:
            for part in parts:
                part.close()
    result.total_seconds = time.perf_counter() - started
    return result
