"""The prepare stage: raw CF sources → one checked, normalised, analysis-ready Zarr store."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

import forecast
from forecast.data import selection
from forecast.data.checks import (
    ValueBounds,
    missing_maps,
    report_flagged,
    sample_positions,
    value_bounds,
    without_maps,
)
from forecast.data.climatology import Slots
from forecast.data.compute import cluster, compute
from forecast.data.config import DataConfig, WindowConfig
from forecast.data.longitude import is_global
from forecast.data.provenance import content_hash, describe_sources
from forecast.data.source import open_source, select_variables
from forecast.data.stats import Statistics, StatisticsAccumulator, normalise
from forecast.data.store import FORMAT_VERSION, STATIC_CHANNELS, latitude_weights, static_fields, write_atomically
from forecast.data.timeaxis import TimeAxis, check_time_axis, format_time, period_slice
from forecast.data.windows import SPLITS, SplitRange, check_split_ranges, default_split_ranges, fitting_windows
from forecast.errors import ConfigError, DataError

log = logging.getLogger(__name__)
WRITE_BLOCK_MB = 256  # fields computed and written per step of the write: the memory the write needs


@dataclass(frozen=True)
class Plan:
    """Everything decided before any data is read: the lazy fields, the time axis and the splits."""

    fields: xr.DataArray  # [time, channel, latitude, longitude] physical units, lazy
    axis: TimeAxis
    splits: dict[str, SplitRange]
    paths: list[Path]
    attrs: dict[str, Any]
    slots: Slots

    @property
    def channels(self) -> list[str]:
        return [str(c) for c in self.fields["channel"].values]


def plan(config: DataConfig) -> Plan:
    """Open, select and check lazily; every ``DataError``/``ConfigError`` of the metadata is raised here."""
    output = Path(config.store)
    if output.exists() and not config.overwrite:
        raise ConfigError(f"{output} already exists: pass --overwrite to replace it, or choose another --store.")
    name = config.source
    ds, paths = open_source(config.source, config.chunk_mb)
    ds = select_variables(ds, config.variables, name)
    ds = selection.select_time(ds, config.time_range, name)
    ds = selection.select_region(ds, config.region, name)
    ds = selection.coarsen(ds, config.coarsen)
    fields = selection.stack_channels(ds, config.variables, config.levels, name)
    axis = check_time_axis(fields["time"].values, name)
    splits = resolve_splits(fields.get_index("time"), config, name)
    chunk_steps = max(1, min(fields.sizes["time"], int(config.chunk_mb * 2**20 // (math.prod(fields.shape[1:]) * 4))))
    fields = fields.copy(data=fields.data.rechunk((chunk_steps, -1, -1, -1)))  # data only: coords stay numpy
    return Plan(fields=fields, axis=axis, splits=splits, paths=paths, attrs=dict(ds.attrs),
                slots=Slots.for_series(axis.step, fields["time"].values))


def resolve_splits(index, config: DataConfig, name: str) -> dict[str, SplitRange]:
    """Given periods → index ranges; the missing ones default to the last 10 % (test) and 10 % before (val)."""
    defaults = default_split_ranges(len(index))
    ranges = {}
    for split in SPLITS:
        period = getattr(config.splits, split)
        if period is None:
            ranges[split] = SplitRange(split, *defaults[split])
            continue
        positions = period_slice(index, period.start, period.end, f"data.splits.{split}")
        ranges[split] = SplitRange(split, positions.start, positions.stop)
    check_split_ranges(list(ranges.values()))
    if min(r.length for r in ranges.values()) <= 0:
        raise ConfigError(
            f"{name}: {len(index)} time steps are too few to split into train/val/test; "
            "give longer data or explicit data.splits."
        )
    return ranges


def _blocks(start: int, stop: int, steps: int) -> list[slice]:
    return [slice(a, min(a + steps, stop)) for a in range(start, stop, steps)]


def prepare(config: DataConfig, windows: WindowConfig | None = None, settings: dict | None = None
            ) -> tuple[Path, tuple[int, int]]:
    """Run the stage: plan, check the values, statistics of the training period, write the store atomically.

    Returns the store's path and the windows that fit it (the configured ones, or defaults shortened to fit).
    """
    windows = windows or WindowConfig()
    with cluster(config.scheduler):
        the_plan = plan(config)
        name, channels, train = config.source, the_plan.channels, the_plan.splits["train"]
        sample = compute(the_plan.fields.isel(time=sample_positions(train.start, train.stop)).data,
                         description="sampling values")[0]
        bounds = value_bounds(np.asarray(sample, np.float64), channels, name, config.outlier_spread)
        _check_not_empty(the_plan, np.isfinite(sample).any(axis=(0, 2, 3)), name)
        fitted = fitting_windows(the_plan.splits, windows.input_steps, windows.output_steps)
        screened = bounds.screen(the_plan.fields)
        statistics = _statistics(the_plan, screened, name)
        ds = _store_dataset(the_plan, screened, statistics, describe_sources(the_plan.paths), config, settings or {})
        _write(the_plan, ds, screened, statistics, bounds, config)
    log.info("wrote %s: %s", config.store, dict(ds["fields"].sizes))
    return Path(config.store), fitted


def _check_not_empty(the_plan: Plan, sampled: np.ndarray, name: str) -> None:
    """A channel without a valid value in the sample is counted over the whole training period: if it has none
    there either, that is the root cause to report, before any window or statistic."""
    train = the_plan.splits["train"]
    for c in np.flatnonzero(~sampled):
        values = the_plan.fields.isel(time=slice(train.start, train.stop), channel=c)
        if not int(compute(values.notnull().sum().data, description="checking an empty-looking variable")[0]):
            raise DataError(f"{name}: variable '{the_plan.channels[c]}' is entirely NaN in the training period; "
                            "check the file's _FillValue/missing_value or drop the variable.")


def _statistics(the_plan: Plan, screened: xr.DataArray, name: str) -> Statistics:
    """Mean, std, mask and per-slot climatology of the training period, read in bounded blocks."""
    train = the_plan.splits["train"]
    slot = the_plan.slots.of(the_plan.fields["time"].values)
    accumulator = StatisticsAccumulator(the_plan.slots, the_plan.fields.shape[1:])
    blocks = _blocks(train.start, train.stop, _block_steps(the_plan.fields))
    for k, block in enumerate(blocks):
        values = compute(screened.isel(time=block).data, description=f"statistics ({k + 1}/{len(blocks)})")[0]
        accumulator.add(np.asarray(values), slot[block])
    return accumulator.finish(the_plan.channels, name)


def _block_steps(fields: xr.DataArray) -> int:
    chunk = fields.data.chunksize[0]
    chunk_mb = math.prod(fields.data.chunksize) * 4 / 2**20
    return chunk * max(1, int(WRITE_BLOCK_MB // max(chunk_mb, 1e-9)))


def _write(the_plan: Plan, ds: xr.Dataset, screened: xr.DataArray, statistics: Statistics, bounds: ValueBounds,
           config: DataConfig) -> None:
    """Write the store block by block; count, alongside, implausible values and each map's missing share."""
    mask = xr.DataArray(statistics.valid, dims=("channel", "latitude", "longitude"))
    missing = (screened.isnull() & mask).sum(("latitude", "longitude")) / np.maximum(statistics.valid.sum((1, 2)), 1)
    shares: list[np.ndarray] = []
    counts = np.zeros((2, len(the_plan.channels)), np.int64)
    encoding = {
        "fields": {"chunks": the_plan.fields.data.chunksize, "compressors": None},  # memory-mapped by training
        "time": {"calendar": ds.attrs["calendar"]},
    }

    def run(region: slice, write: Any) -> None:
        raw = the_plan.fields.isel(time=region)
        _, share, bad, good = compute(write, missing.isel(time=region).data, bounds.flagged(raw).data,
                                      raw.notnull().sum(("time", "latitude", "longitude")).data,
                                      description=f"writing {Path(config.store).name} (steps {region.start}-"
                                                  f"{region.stop} of {ds.sizes['time']})")
        shares.append(np.asarray(share))
        counts[0] += np.asarray(bad, np.int64)
        counts[1] += np.asarray(good, np.int64)

    def finish(tmp: Path) -> None:
        units = [str(u) for u in the_plan.fields["units"].values]
        report_flagged(counts[0], counts[1], bounds, the_plan.channels, config.source, units)
        _mark_missing_maps(tmp, the_plan, np.concatenate(shares), config.max_missing)

    write_atomically(ds, Path(config.store), encoding, _block_steps(the_plan.fields), run, finish)


def _mark_missing_maps(tmp: Path, the_plan: Plan, share: np.ndarray, threshold: float) -> None:
    """Maps missing too much become gaps: the segment array and the gap list of the store are amended."""
    positions = missing_maps(share, threshold)
    if positions.size == 0:
        return
    times = the_plan.fields["time"].values
    log.warning("%s: %d map(s) miss more than %.0f%% of their valid points and are gaps, not filled maps: %s.",
                the_plan.paths[0] if len(the_plan.paths) == 1 else "the source", positions.size, 100 * threshold,
                ", ".join(format_time(times[i]) for i in positions[:5]) + (" …" if positions.size > 5 else ""))
    group = zarr.open_group(tmp, mode="r+")
    group["segment"][:] = without_maps(the_plan.axis.segment, positions)
    group.attrs["missing_maps"] = json.dumps([format_time(times[i]) for i in positions])


def _store_dataset(the_plan: Plan, screened: xr.DataArray, statistics: Statistics, sources: list[dict],
                   config: DataConfig, settings: dict[str, Any]) -> xr.Dataset:
    fields = screened  # implausible values (undeclared fills) are missing, filled like NaN: never written as data
    lat, lon = fields["latitude"].values, fields["longitude"].values
    grid = ("channel", "latitude", "longitude")
    times = fields["time"].values
    ds = xr.Dataset(
        {
            "fields": normalise(fields.drop_vars("source_longitude"), statistics.mean, statistics.std, channel_axis=1)
            .fillna(0.0).astype(np.float32),
            "mask": (grid, statistics.valid),
            "climatology": (("slot_index", *grid), statistics.climatology),
            "slot": ("time", the_plan.slots.of(times).astype(np.int32)),
            "mean": ("channel", statistics.mean),
            "std": ("channel", statistics.std),
            "static": (("static_channel", "latitude", "longitude"), static_fields(statistics.valid, lat, lon.size)),
            "lat_weights": ("latitude", latitude_weights(lat)),
            "segment": ("time", the_plan.axis.segment),
            "source_longitude": ("longitude", fields["source_longitude"].values.astype(np.float64)),
        },
        coords={"static_channel": list(STATIC_CHANNELS)},
    )
    # Variable-length strings: zarr v3 has a specified dtype for them, not for fixed-width numpy strings.
    ds = ds.assign_coords({name: coord.astype(object) for name, coord in ds.coords.items() if coord.dtype.kind == "U"})
    ds["fields"].attrs = {"long_name": "normalised fields", "units": "1"}
    ds["latitude"].attrs = {"units": "degrees_north", "standard_name": "latitude", "axis": "Y"}
    ds["longitude"].attrs = {"units": "degrees_east", "standard_name": "longitude", "axis": "X"}
    splits = {
        name: {"index": [r.start, r.stop], "period": [format_time(times[r.start]), format_time(times[r.stop - 1])]}
        for name, r in the_plan.splits.items()
    }
    data_settings = {k: v for k, v in dataclasses.asdict(config).items()
                     if k not in {"source", "store", "overwrite", "scheduler", "chunk_mb"}}
    ds.attrs = {
        "forecast_store_format": FORMAT_VERSION,
        "title": "analysis-ready store written by forecast prepare",
        "forecast_version": forecast.__version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "time_step": str(the_plan.axis.step),
        "time_anchor": the_plan.axis.step.anchor,
        "gaps": json.dumps(the_plan.axis.gaps),
        "missing_maps": "[]",
        "splits": json.dumps(splits),
        "sources": json.dumps(sources),
        "config": json.dumps(settings, default=str),
        "content_hash": content_hash(sources, data_settings, FORMAT_VERSION),
        "longitude_convention": the_plan.attrs["longitude_convention"],
        "source_longitude_convention": the_plan.attrs["source_longitude_convention"],
        "source_latitude_order": the_plan.attrs.get("source_latitude_order", "ascending"),
        "periodic_longitude": int(is_global(lon)),
        "climatology_slots": json.dumps(dataclasses.asdict(the_plan.slots)),
        "calendar": the_plan.attrs["calendar"],
    }
    return ds
