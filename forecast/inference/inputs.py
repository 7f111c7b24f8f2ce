"""The maps a forecast starts from, normalised with the model's training statistics: from the prepared store,
or from raw files that arrived after training (selected like the store was, never re-normalised on their own)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecast.data import selection
from forecast.data.config import DataConfig
from forecast.data.provenance import content_hash, describe_sources
from forecast.data.reader import FieldsReader
from forecast.data.source import open_source, same_coordinates, select_variables
from forecast.data.stats import denormalise
from forecast.data.store import StoreInfo
from forecast.data.timeaxis import check_time_axis, format_step
from forecast.errors import DataError
from forecast.inference.runner import Runner


@dataclass(frozen=True)
class InputSeries:
    """``read(start, stop)`` → ``[stop - start, C, H, W]`` normalised maps at positions of ``times``; ``segment``
    labels the gap-free runs; ``checksum`` identifies the data (the store's content hash or the files')."""

    times: np.ndarray
    segment: np.ndarray
    read: Callable[[int, int], np.ndarray]
    checksum: str
    origin: str

    @property
    def index(self) -> pd.Index:
        return pd.Index(self.times)

    def windows(self, ends: list[int], steps: int) -> np.ndarray:
        """Input windows ``[N, steps, C, H, W]`` ending (inclusive) at each position of ``ends``."""
        return np.stack([self.read(end - steps + 1, end + 1) for end in ends])


def from_store(info: StoreInfo, runner: Runner) -> InputSeries:
    reader = FieldsReader(info.path)
    checksum = str(info.attrs.get("content_hash", ""))
    if checksum == runner.package.description["store"]["content_hash"]:
        read = reader.read  # the very statistics the model trained with
    else:
        def read(start: int, stop: int) -> np.ndarray:
            physical = denormalise(reader.read(start, stop), info.mean, info.std, channel_axis=1)
            return runner.normalise(np.where(info.mask, physical, np.nan))
    return InputSeries(info.times, info.segment, read, checksum, str(info.path))


def from_raw(source: str, data: DataConfig, runner: Runner) -> InputSeries:
    """Open new raw files, select the model's variables, levels and region, check they are on its grid."""
    description = runner.package.description
    ds, paths = open_source(source, data.chunk_mb)
    variables = list(dict.fromkeys(c["variable"] for c in description["channels"]))
    ds = select_variables(ds, variables, source)
    ds = selection.coarsen(selection.select_region(ds, data.region, source), data.coarsen)
    fields = selection.stack_channels(ds, variables, data.levels, source)
    channels = [str(c) for c in fields["channel"].values]
    if channels != runner.package.channels:
        raise DataError(f"{source}: gives channels {channels}; the model was trained on {runner.package.channels}.")
    latitude, longitude = runner.package.arrays["latitude"], runner.package.arrays["longitude"]
    if not (same_coordinates(fields["latitude"].values, latitude)
            and same_coordinates(fields["longitude"].values, longitude)):
        raise DataError(f"{source}: grid {fields.sizes['latitude']}×{fields.sizes['longitude']} differs from the "
                        f"model's {latitude.size}×{longitude.size}; regrid the files to the training grid first.")
    axis = check_time_axis(fields["time"].values, source)
    _same_time_axis(source, axis.step, ds.attrs.get("calendar", "standard"), description)
    normalised = runner.normalise(fields.values)  # new files for one forecast: small enough to hold
    checksum = content_hash(describe_sources(paths), {}, "")
    return InputSeries(fields["time"].values, axis.segment, lambda a, b: normalised[a:b], checksum, source)


GREGORIAN = {"standard", "gregorian", "proleptic_gregorian"}  # one calendar for dates after 1582


def _same_time_axis(source: str, step: pd.Timedelta, calendar: str, description: dict) -> None:
    """New files must step and count days like the training data, or every lead would be mislabelled."""
    trained_step = pd.Timedelta(description["time_step"])
    if step != trained_step:
        raise DataError(f"{source}: time step {format_step(step)}; the model was trained on "
                        f"{format_step(trained_step)} steps. Give files at the training step.")
    trained = description.get("calendar") or "standard"
    if calendar != trained and not {calendar, trained} <= GREGORIAN:
        raise DataError(f"{source}: calendar {calendar}; the model was trained on the {trained} calendar.")
