"""Typed settings of the data stages: what to read, what to keep, how to split and window it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Region:
    """A latitude/longitude box in degrees, any longitude convention; a box that wraps (170 → -170) is fine."""

    lat_min: float = -90.0
    lat_max: float = 90.0
    lon_min: float = 0.0
    lon_max: float = 360.0


@dataclass
class Period:
    """A closed time range given as ISO dates (``"2000-01-01"``, ``"2019-12-31T18"``)."""

    start: str
    end: str


@dataclass
class Splits:
    """Train/validation/test periods; any left out gets a default (test: last 10 %, validation: the 10 % before)."""

    train: Period | None = None
    val: Period | None = None
    test: Period | None = None


@dataclass
class DataConfig:
    """What ``prepare`` reads and writes.

    Args:
        source: one NetCDF file, a glob of many (quote it in a shell), or a Zarr store.
        variables: source variable names to keep, in channel order.
        output: the analysis-ready Zarr store to write.
        levels: pressure levels to keep for variables with a ``level`` dimension (all if empty).
        region: latitude/longitude box to cut out.
        time_range: only this period of the source is read.
        coarsen: average blocks of this many grid points in latitude and longitude (1 = keep the grid).
        splits: train/validation/test periods; statistics come from the training period only.
        chunk_mb: target size of one time chunk of the store in MB (training reads windows of whole chunks).
        scheduler: address of a ``dask.distributed`` scheduler (``tcp://host:8786``); empty runs locally.
        overwrite: replace an existing store at ``output``.
    """

    source: str = ""
    variables: list[str] = field(default_factory=list)
    output: str = "stores/dataset.zarr"
    levels: list[float] = field(default_factory=list)
    region: Region = field(default_factory=Region)
    time_range: Period | None = None
    coarsen: int = 1
    splits: Splits = field(default_factory=Splits)
    chunk_mb: float = 16.0
    scheduler: str = ""
    overwrite: bool = False


@dataclass
class WindowConfig:
    """How samples are cut from the store: ``input_steps`` maps in, ``output_steps`` maps out."""

    input_steps: int = 12
    output_steps: int = 12
    stride: int = 1
