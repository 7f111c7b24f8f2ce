"""``forecast prepare``: raw CF maps → analysis-ready Zarr store."""

from __future__ import annotations

import json
from collections.abc import Sequence

from forecast.data.prepare import prepare
from forecast.data.store import StoreInfo, open_store
from forecast.data.timeaxis import format_time
from forecast.data.windows import valid_starts
from pipelines.config import DATA_SHORTCUTS, as_dict, build_parser, parse

DESCRIPTION = """Select, check and normalise raw maps; write one analysis-ready Zarr store.
Without a config file: forecast prepare --source 'era5/*.nc' --variables t2m,z500 --output stores/era5.zarr
Shortcuts: --source --variables --output --train/--val/--test START/END --overwrite"""


def main(argv: Sequence[str]) -> int:
    parser = build_parser("prepare", DESCRIPTION)
    cfg, objects = parse(parser, argv, DATA_SHORTCUTS)
    path = prepare(objects.data, objects.windows, resolved_config=as_dict(parser, cfg))
    info = open_store(path)
    print(summary(info, objects.windows.input_steps + objects.windows.output_steps, objects.windows.stride))
    return 0


def summary(info: StoreInfo, window_length: int, stride: int) -> str:
    """What a user wants to see after prepare: where, what, which periods, how many samples."""
    n_time, n_channel, n_lat, n_lon = info.shape
    size_mb = sum(p.stat().st_size for p in info.path.rglob("*") if p.is_file()) / 2**20
    splits = json.loads(info.attrs["splits"])
    lines = [
        f"Store written: {info.path}  ({size_mb:.1f} MB, content hash {info.attrs['content_hash']})",
        f"  fields     {n_time} times × {n_channel} channels × {n_lat} lat × {n_lon} lon (float32, normalised)",
        f"  time       {format_time(info.times[0])} … {format_time(info.times[-1])}, step {info.attrs['time_step']}, "
        f"calendar {info.attrs['calendar']}, {len(json.loads(info.attrs['gaps']))} gap(s)",
        f"  grid       latitude {info.latitude.min():g}…{info.latitude.max():g}, longitude "
        f"{info.longitude.min():g}…{info.longitude.max():g} {info.attrs['longitude_convention']}",
    ]
    for c, channel in enumerate(info.channels):
        valid = info.mask[c].mean() * 100
        lines.append(f"  channel    {channel:<10} mean {info.mean[c]:.4g}  std {info.std[c]:.4g}  valid {valid:.0f}%")
    for name, split in info.split_ranges.items():
        starts = valid_starts(info.segment, split, window_length, stride)
        start, end = splits[name]["period"]
        lines.append(f"  {name:<10} {start} … {end}: {split.length} steps, {starts.size} windows of {window_length}")
    return "\n".join(lines)
