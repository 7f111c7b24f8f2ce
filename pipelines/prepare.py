"""``forecast prepare``: raw CF maps → checked, analysis-ready Zarr store."""

from __future__ import annotations

from collections.abc import Sequence

from forecast.data.prepare import prepare
from forecast.data.store import StoreInfo, open_store
from forecast.data.timeaxis import format_time
from forecast.data.windows import window_inits
from pipelines.config import as_dict, parse


def main(argv: Sequence[str]) -> int:
    _, cfg, objects = parse("prepare", argv)
    path, windows = prepare(objects.data, objects.windows, settings=as_dict(cfg))
    print(summary(open_store(path), windows, objects.windows.stride))
    return 0


def summary(info: StoreInfo, windows: tuple[int, int], stride: int) -> str:
    """What a user wants to see after prepare: where, what, which periods, how many samples."""
    n_time, n_channel, n_lat, n_lon = info.shape
    size_mb = sum(p.stat().st_size for p in info.path.rglob("*") if p.is_file()) / 2**20
    anchor = {"middle": ", mid-month stamps", "start": ", stamped at the start", "end": ", stamped at the end"}
    stamps = anchor.get(info.time_step.anchor, "") if info.time_step.is_calendar else ""
    grid = "global, periodic in longitude" if info.periodic else "regional"
    lines = [
        f"Store written: {info.path}  ({size_mb:.1f} MB, data hash {info.content_hash})",
        f"  fields     {n_time} times × {n_channel} channels × {n_lat} lat × {n_lon} lon (float32, normalised)",
        f"  time       {format_time(info.times[0])} … {format_time(info.times[-1])}, step {info.time_step}{stamps}, "
        f"calendar {info.calendar}, {len(info.gaps)} gap(s), {len(info.missing_maps)} missing map(s)",
        f"  grid       latitude {info.latitude.min():g}…{info.latitude.max():g}, longitude "
        f"{info.longitude.min():g}…{info.longitude.max():g} {info.longitude_convention} ({grid})",
        f"  climate    per-slot climatology: {info.slots.describe()}",
    ]
    for c, channel in enumerate(info.channels):
        valid = info.mask[c].mean() * 100
        lines.append(f"  channel    {channel.name:<10} {channel.units or '(no units)':<8} mean {info.mean[c]:.4g}  "
                     f"std {info.std[c]:.4g}  valid {valid:.0f}%")
    input_steps, output_steps = windows
    for name, split in info.split_ranges.items():
        inits = window_inits(info.segment, input_steps, output_steps, split, inputs_inside=name == "train",
                             stride=stride if name == "train" else 1)
        start, end = info.split_periods[name]
        lines.append(f"  {name:<10} {start} … {end}: {split.length} steps, {inits.size} windows of "
                     f"{input_steps}+{output_steps}")
    return "\n".join(lines)
