"""Typed settings of the data stages: what to read, what to keep, how to split and window it.

Each class checks its own values when it is built, so a bad setting stops a stage before any work.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from forecast.errors import ConfigError


def require(ok: bool, key: str, value: object, allowed: str) -> None:
    """``ConfigError`` naming the key, the value and what is allowed, unless ``ok``."""
    if not ok:
        raise ConfigError(f"{key} is {value!r}; it must be {allowed}.")


@dataclass
class Region:
    """A latitude/longitude box in degrees, any longitude convention; a box that wraps (170 → -170) is fine."""

    lat_min: float = -90.0
    lat_max: float = 90.0
    lon_min: float = 0.0
    lon_max: float = 360.0

    def __post_init__(self) -> None:
        require(-90 <= self.lat_min < self.lat_max <= 90, "data.region", (self.lat_min, self.lat_max),
                "a latitude range lat_min < lat_max inside [-90, 90]")


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
    """What ``prepare`` reads and writes, and the store every later stage reads.

    Args:
        source: one NetCDF file, a glob of many (quote it in a shell), or a Zarr store.
        variables: source variable names to keep, in channel order.
        store: the analysis-ready Zarr store (written by prepare, read by train, evaluate and predict).
        levels: pressure levels to keep for variables with a ``level`` dimension (all if empty).
        region: latitude/longitude box to cut out.
        time_range: only this period of the source is read.
        coarsen: average blocks of this many grid points in latitude and longitude (1 = keep the grid).
        splits: train/validation/test periods; statistics come from the training period only.
        chunk_mb: target size of one time chunk of the store in MB (training reads windows of whole chunks).
        scheduler: address of a ``dask.distributed`` scheduler (``tcp://host:8786``); empty runs locally.
        overwrite: replace an existing store.
        outlier_spread: values further than this many times the 0.1–99.9 % range of a variable's sampled values
            beyond that range are implausible (an undeclared fill value): they become missing, with a warning
            (0 switches the range check off; |values| ≥ 1e20 are always missing).
        max_missing: a map missing more than this share of its valid points becomes a gap, not a filled map.
    """

    source: str = ""
    variables: list[str] = field(default_factory=list)
    store: str = "stores/dataset.zarr"
    levels: list[float] = field(default_factory=list)
    region: Region = field(default_factory=Region)
    time_range: Period | None = None
    coarsen: int = 1
    splits: Splits = field(default_factory=Splits)
    chunk_mb: float = 16.0
    scheduler: str = ""
    overwrite: bool = False
    outlier_spread: float = 8.0
    max_missing: float = 0.5

    def __post_init__(self) -> None:
        require(self.coarsen >= 1, "data.coarsen", self.coarsen, "a whole number >= 1")
        require(self.chunk_mb > 0, "data.chunk_mb", self.chunk_mb, "positive")
        require(self.outlier_spread >= 0, "data.outlier_spread", self.outlier_spread, ">= 0 (0: no range check)")
        require(0 <= self.max_missing <= 1, "data.max_missing", self.max_missing, "a share between 0 and 1")


@dataclass
class WindowConfig:
    """How samples are cut from the store: ``input_steps`` maps in, ``output_steps`` maps out.

    Args:
        input_steps: maps a forecast starts from (unset: 12, or fewer to fit the splits).
        output_steps: leads forecast (unset: 12, or fewer to fit the splits).
        stride: training windows start every this many steps.
    """

    input_steps: int | None = None
    output_steps: int | None = None
    stride: int = 1

    def __post_init__(self) -> None:
        for key in ("input_steps", "output_steps"):
            value = getattr(self, key)
            require(value is None or value >= 1, f"windows.{key}", value, "a whole number >= 1")
        require(self.stride >= 1, "windows.stride", self.stride, "a whole number >= 1")
