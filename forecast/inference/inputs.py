"""The maps a forecast starts from, normalised with the model's training statistics: from the prepared store, or
from raw files that arrived after training (cut like the store was, in the training units, never re-normalised
on their own)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from forecast.data import selection
from forecast.data.checks import ABSURD, missing_maps, without_maps
from forecast.data.config import Region
from forecast.data.provenance import content_hash, describe_sources
from forecast.data.reader import FieldsReader
from forecast.data.source import open_source, same_coordinates, select_variables
from forecast.data.stats import denormalise
from forecast.data.store import StoreInfo
from forecast.data.timeaxis import check_time_axis, format_time
from forecast.data.units import conversion
from forecast.errors import DataError, ModelError
from forecast.inference.runner import Runner
from forecast.package import ModelCard

log = logging.getLogger(__name__)
GREGORIAN = {"standard", "gregorian", "proleptic_gregorian"}  # one calendar for dates after 1582


@dataclass(frozen=True)
class InputSeries:
    """``read(start, stop)`` → ``[stop - start, C, H, W]`` normalised maps at positions of ``times``; ``segment``
    labels the gap-free runs (a missing map is a run of its own); ``checksum`` identifies the data (the store's
    content hash or the files'); ``missing`` is each map's share of missing valid points."""

    times: np.ndarray
    segment: np.ndarray
    read: Callable[[int, int], np.ndarray]
    checksum: str
    origin: str
    missing: np.ndarray | None = None

    def windows(self, ends: list[int], steps: int) -> np.ndarray:
        """Input windows ``[N, steps, C, H, W]`` ending (inclusive) at each position of ``ends``."""
        return np.stack([self.read(end - steps + 1, end + 1) for end in ends])

    def frame_times(self, ends: list[int], card: ModelCard, output_steps: int | None = None) -> np.ndarray:
        """``[N, T_in + T_out]`` times of each window's input maps and of its leads (by calendar arithmetic)."""
        steps, leads, step = card.input_steps, output_steps or card.output_steps, card.step
        rows = [[*self.times[end - steps + 1: end + 1], *step.sequence(self.times[end], leads)] for end in ends]
        return np.array(rows, dtype=self.times.dtype)


def check_model_fits(card: ModelCard, arrays: dict[str, np.ndarray], channels: list[str], latitude: np.ndarray,
                     longitude: np.ndarray, where: str, model: str) -> None:
    """``ModelError`` naming both sides when the data's channels or grid are not the model's."""
    if channels != card.channel_names:
        raise ModelError(f"model {model} forecasts channels {card.channel_names}; {where} holds {channels}. Use a "
                         "model trained on these data.")
    if not (same_coordinates(latitude, arrays["latitude"]) and same_coordinates(longitude, arrays["longitude"])):
        raise ModelError(f"model {model} was trained on a {arrays['latitude'].size}×{arrays['longitude'].size} grid "
                         f"(latitude {arrays['latitude'].min():g}…{arrays['latitude'].max():g}); {where} is "
                         f"{latitude.size}×{longitude.size} ({latitude.min():g}…{latitude.max():g}). Use a model "
                         "trained on this grid, or regrid the data.")


def from_store(info: StoreInfo, runner: Runner, model: str) -> InputSeries:
    """The store's maps in the model's normalisation (the store's own when it is the training store)."""
    card = runner.card
    check_model_fits(card, runner.package.arrays, info.channel_names, info.latitude, info.longitude, str(info.path),
                     model)
    reader = FieldsReader(info.path)
    if info.content_hash == card.store["content_hash"]:
        read = reader.read  # the very statistics the model trained with
    else:
        def read(start: int, stop: int) -> np.ndarray:
            physical = denormalise(reader.read(start, stop), info.mean, info.std, channel_axis=1)
            return runner.normalise(np.where(info.mask, physical, np.nan))
    return InputSeries(info.times, info.segment, read, info.content_hash, str(info.path))


def from_raw(source: str, runner: Runner, model: str) -> InputSeries:
    """Open new raw files, cut them as the training store was (the model card's selection and longitude
    convention), check grid, time step and calendar, and convert them to the training units."""
    card = runner.card
    ds, paths = open_source(source)
    chosen = card.selection
    ds = select_variables(ds, chosen.variables, source)
    ds = selection.select_region(ds, Region(**chosen.region) if chosen.region else Region(), source,
                                 convention=card.longitude_convention)
    ds = selection.coarsen(ds, chosen.coarsen)
    fields = selection.stack_channels(ds, chosen.variables, chosen.levels, source)
    check_model_fits(card, runner.package.arrays, [str(c) for c in fields["channel"].values],
                     fields["latitude"].values, fields["longitude"].values, source, model)
    axis = check_time_axis(fields["time"].values, source)
    _same_time_axis(source, str(axis.step), ds.attrs.get("calendar", "standard"), card)
    values = _in_training_units(fields.values, [str(u) for u in fields["units"].values], card, source)
    values[np.abs(values) >= ABSURD] = np.nan  # an undeclared 1e30 fill is missing, never an input
    share = _missing_share(values, runner.mask)
    segment = without_maps(axis.segment, missing_maps(share, chosen.max_missing))
    normalised = runner.normalise(values)  # new files for one forecast: small enough to hold
    checksum = content_hash(describe_sources(paths), {}, "")
    return InputSeries(fields["time"].values, segment, lambda a, b: normalised[a:b], checksum, source, share)


def _in_training_units(values: np.ndarray, units: list[str], card: ModelCard, source: str) -> np.ndarray:
    """``[T, C, H, W]`` converted channel by channel to the units the model was trained in."""
    values = values.astype(np.float64)
    for c, (have, channel) in enumerate(zip(units, card.channels, strict=True)):
        rule = conversion(have, channel.units, f"{source}: variable '{channel.variable}' is not in the training units")
        if rule is not None:
            log.info("%s: '%s' converted from %s to the training units %s", source, channel.name, have, channel.units)
            values[:, c] = values[:, c] * rule[0] + rule[1]
    return values


def _missing_share(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``[T, C]`` share of the model's valid points that each map misses."""
    return (np.isnan(values) & mask).sum(axis=(2, 3)) / np.maximum(mask.sum(axis=(1, 2)), 1)


def _same_time_axis(source: str, step: str, calendar: str, card: ModelCard) -> None:
    """New files must step and count days like the training data, or every lead would be mislabelled."""
    if step != card.time_step:
        raise DataError(f"{source}: time step {step}; the model was trained on {card.time_step} steps. Give files "
                        "at the training step.")
    trained = card.calendar or "standard"
    if calendar != trained and not {calendar, trained} <= GREGORIAN:
        raise DataError(f"{source}: calendar {calendar}; the model was trained on the {trained} calendar.")


def describe_missing(series: InputSeries, ends: list[int], input_steps: int) -> str:
    """The partly missing maps (below the gap threshold) in the input windows ending at ``ends``, for a warning."""
    if series.missing is None:
        return ""
    found = sorted({i for end in ends for i in range(end - input_steps + 1, end + 1) if series.missing[i].any() > 0})
    return ", ".join(f"{format_time(series.times[i])} ({series.missing[i].max():.0%})" for i in found[:5])
