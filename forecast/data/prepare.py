"""The prepare stage: raw CF sources → one normalised, analysis-ready Zarr store."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import xarray as xr

import forecast
from forecast.data import selection, stats
from forecast.data.compute import cluster, compute
from forecast.data.config import DataConfig, WindowConfig
from forecast.data.provenance import content_hash, describe_sources
from forecast.data.source import open_source, select_variables
from forecast.data.store import FORMAT_VERSION, STATIC_CHANNELS, latitude_weights, static_fields, write_atomically
from forecast.data.timeaxis import TimeAxis, check_time_axis, format_step, format_time, period_slice
from forecast.data.windows import SPLITS, SplitRange, check_split_ranges, check_windows_fit, default_split_ranges
from forecast.errors import ConfigError

log = logging.getLogger(__name__)
WRITE_BLOCK_MB = 256  # fields computed and written per step of the write: the memory the write needs


@dataclass(frozen=True)
class Plan:
    """Everything decided before any data is read: the lazy fields, the time axis and the splits."""

    fields: xr.DataArray  # [time, channel, latitude, longitude] physical units, lazy
    axis: TimeAxis
    splits: dict[str, SplitRange]
    paths: list[Path]
    attrs: dict[str, str]


def plan(config: DataConfig, windows: WindowConfig | None = None) -> Plan:
    """Open, select and check lazily; every ``DataError``/``ConfigError`` is raised here, before any compute."""
    output = Path(config.output)
    if output.exists() and not config.overwrite:
        raise ConfigError(f"{output} already exists: pass --overwrite to replace it, or choose another --output.")
    name = config.source
    ds, paths = open_source(config.source, config.chunk_mb)
    ds = select_variables(ds, config.variables, name)
    ds = selection.select_time(ds, config.time_range, name)
    ds = selection.select_region(ds, config.region, name)
    ds = selection.coarsen(ds, config.coarsen)
    fields = selection.stack_channels(ds, config.variables, config.levels, name)
    axis = check_time_axis(fields["time"].values, name)
    splits = resolve_splits(fields.get_index("time"), config, name)
    if windows is not None:
        check_windows_fit(list(splits.values()), windows.input_steps + windows.output_steps)
    chunk_steps = _chunk_steps(fields, config.chunk_mb)
    fields = fields.copy(data=fields.data.rechunk((chunk_steps, -1, -1, -1)))  # data only: coords stay numpy
    return Plan(fields=fields, axis=axis, splits=splits, paths=paths, attrs=dict(ds.attrs))


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


def _chunk_steps(fields: xr.DataArray, chunk_mb: float) -> int:
    step_bytes = math.prod(fields.shape[1:]) * 4
    return max(1, min(fields.sizes["time"], int(chunk_mb * 2**20 // step_bytes)))


def prepare(config: DataConfig, windows: WindowConfig | None = None, resolved_config: dict | None = None) -> Path:
    """Run the stage: plan, statistics on the training period, write the store atomically. Returns its path."""
    with cluster(config.scheduler):
        the_plan = plan(config, windows)
        train = the_plan.splits["train"]
        counts = stats.statistics_graph(the_plan.fields.isel(time=slice(train.start, train.stop)))
        count, total, squares = compute(*counts, description="statistics (training period)")
        channels = [str(c) for c in the_plan.fields["channel"].values]
        statistics = stats.finish_statistics(count.values, total.values, squares.values, channels, config.source)
        sources = describe_sources(the_plan.paths)
        settings = resolved_config or {"data": dataclasses.asdict(config)}
        ds = _store_dataset(the_plan, statistics, sources, settings)
        output = Path(config.output)
        chunks = the_plan.fields.data.chunksize
        encoding = {
            "fields": {"chunks": chunks, "compressors": None},  # uncompressed: memory-mapped by training
            "time": {"calendar": ds.attrs["calendar"]},
        }
        block_steps = chunks[0] * max(1, int(WRITE_BLOCK_MB // config.chunk_mb))
        write_atomically(ds, output, encoding, block_steps, lambda delayed, what: compute(delayed, description=what))
    log.info("wrote %s: %s", output, dict(ds["fields"].sizes))
    return output


def _store_dataset(the_plan: Plan, statistics: stats.Statistics, sources: list[dict], settings: dict) -> xr.Dataset:
    fields = the_plan.fields
    lat, lon = fields["latitude"].values, fields["longitude"].values
    grid = ("channel", "latitude", "longitude")
    times = fields["time"].values
    ds = xr.Dataset(
        {
            "fields": stats.normalise(fields, statistics),
            "mask": (grid, statistics.valid),
            "climatology": (grid, statistics.climatology),
            "mean": ("channel", statistics.mean),
            "std": ("channel", statistics.std),
            "static": (("static_channel", "latitude", "longitude"), static_fields(statistics.valid, lat, lon.size)),
            "lat_weights": ("latitude", latitude_weights(lat)),
            "segment": ("time", the_plan.axis.segment),
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
    version = forecast.__version__
    ds.attrs = {
        "forecast_store_format": FORMAT_VERSION,
        "title": "analysis-ready store written by forecast prepare",
        "forecast_version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "time_step": format_step(the_plan.axis.step),
        "gaps": json.dumps(the_plan.axis.gaps),
        "splits": json.dumps(splits),
        "sources": json.dumps(sources),
        "config": json.dumps(settings, default=str),
        "content_hash": content_hash(sources, settings, version),
        "longitude_convention": the_plan.attrs.get("longitude_convention", "[0, 360)"),
        "source_latitude_order": the_plan.attrs.get("source_latitude_order", "ascending"),
        "calendar": the_plan.attrs["calendar"],
    }
    return ds
