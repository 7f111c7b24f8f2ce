"""Synthetic CF maps: smooth weather features carried by a drifting, turning wind, streamed to NetCDF."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

log = logging.getLogger(__name__)

G = 9.80665  # m s-2: geopotential = G * geopotential height
DIMS = ("time", "latitude", "longitude")
# name -> (standard_name, long_name, units); the formulas are the `_Weather._<name>` methods.
VARIABLES: dict[str, tuple[str, str, str]] = {
    "t2m": ("air_temperature", "2 metre temperature", "K"),
    "tp": ("precipitation_amount", "total precipitation over one time step", "kg m-2"),
    "sst": ("sea_surface_temperature", "sea surface temperature", "K"),
    "z500": ("geopotential", "geopotential at 500 hPa", "m2 s-2"),
    "u10": ("eastward_wind", "10 metre eastward wind", "m s-1"),
    "v10": ("northward_wind", "10 metre northward wind", "m s-1"),
}
NOISE_SCALE = {"t2m": 10.0, "tp": 1.0, "sst": 5.0, "z500": 1000.0, "u10": 5.0, "v10": 5.0}  # `noise` is relative to these
YEAR_DAYS = {"360_day": 360.0, "noleap": 365.0, "365_day": 365.0, "all_leap": 366.0, "366_day": 366.0}
RELAX = math.exp(-1 / 8)  # the anomaly forgets its past in ~8 steps, so sources can grow and decay features
DIFFUSION = 0.05  # cells² per step, on top of the smoothing that bilinear interpolation does anyway
TWO_PI = 2 * math.pi


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate: sizes, variables, time axis (any pandas step, any cftime calendar) and grid."""

    n_times: int = 240
    n_lat: int = 32
    n_lon: int = 64
    variables: tuple[str, ...] = ("t2m", "tp")
    start: str = "2000-01-01"
    freq: str = "6h"
    calendar: str = "standard"
    lat_range: tuple[float, float] = (-60.0, 60.0)
    lon_range: tuple[float, float] = (0.0, 360.0)
    land_mask: bool = False
    noise: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [name for name in self.variables if name not in VARIABLES]
        if unknown or not self.variables:
            raise ValueError(f"Unknown synthetic variable(s) {unknown}; known ones are: {', '.join(VARIABLES)}.")
        if self.n_times < 1 or self.n_lat < 2 or self.n_lon < 2:
            raise ValueError(f"Synthetic sizes must be n_times >= 1, n_lat >= 2, n_lon >= 2; got {self.n_times}, "
                             f"{self.n_lat}, {self.n_lon}.")
        if not -90 <= self.lat_range[0] < self.lat_range[1] <= 90 or self.noise < 0:
            raise ValueError(f"lat_range {self.lat_range} must rise within [-90, 90] and noise {self.noise} be >= 0.")


def grid(spec: SyntheticSpec) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres: latitude ``[n_lat]`` ascending (degrees_north), longitude ``[n_lon]`` (degrees_east)."""
    (lat0, lat1), (lon0, lon1) = spec.lat_range, spec.lon_range
    lat = lat0 + (lat1 - lat0) / spec.n_lat * (np.arange(spec.n_lat) + 0.5)
    lon = lon0 + (lon1 - lon0) / spec.n_lon * np.arange(spec.n_lon)  # end exclusive: lon1 wraps onto lon0
    return lat, lon


def time_axis(spec: SyntheticSpec, periods: int | None = None) -> xr.CFTimeIndex | pd.DatetimeIndex:
    """The first ``periods`` (default all) valid times: numpy datetimes for "standard", else cftime objects."""
    return xr.date_range(spec.start, periods=spec.n_times if periods is None else periods, freq=spec.freq,
                         calendar=spec.calendar, use_cftime=spec.calendar != "standard")


def _wrap(d: np.ndarray, n: int) -> np.ndarray:
    """Shortest signed distance on a periodic axis of ``n`` cells."""
    return (d + n / 2) % n - n / 2


def _bilinear(field: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample ``field [lat, lon]`` at fractional cell positions ``x, y``; periodic in lon, clamped in lat."""
    ny, nx = field.shape
    y = np.clip(y, 0, ny - 1)
    x0, y0 = np.floor(x), np.minimum(np.floor(y), ny - 2)
    fx, fy = x - x0, y - y0
    i0 = x0.astype(np.intp) % nx
    i1 = (i0 + 1) % nx
    j0 = y0.astype(np.intp) * nx  # row offsets into the flat field: one gather instead of 2-D fancy indexing
    j1 = j0 + nx
    flat = field.ravel()
    south = (1 - fx) * flat[j0 + i0] + fx * flat[j0 + i1]
    north = (1 - fx) * flat[j1 + i0] + fx * flat[j1 + i1]
    return (1 - fy) * south + fy * north


def _laplacian(q: np.ndarray) -> np.ndarray:
    """Five-point Laplacian of ``q [lat, lon]`` in cell units; periodic in lon, no flux through the lat edges."""
    rows = np.concatenate([q[:1], q, q[-1:]])
    return np.roll(q, 1, axis=1) + np.roll(q, -1, axis=1) + rows[:-2] + rows[2:] - 4 * q


def land_mask(spec: SyntheticSpec) -> np.ndarray:
    """Smooth continents ``[lat, lon]`` bool: the top 25-40% of a sum of random elliptic Gaussian hills."""
    rng = np.random.default_rng((spec.seed, 1))  # its own stream: switching land on leaves the weather alone
    ny, nx = spec.n_lat, spec.n_lon
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float64)
    height = np.zeros((ny, nx))
    for _ in range(rng.integers(4, 8)):
        cx, cy = rng.uniform(0, nx), rng.uniform(0, ny)
        sx, sy = rng.uniform(0.05, 0.12) * nx, rng.uniform(0.08, 0.2) * ny
        height += np.exp(-0.5 * ((_wrap(x - cx, nx) / sx) ** 2 + ((y - cy) / sy) ** 2))
    return height > np.quantile(height, 1 - rng.uniform(0.25, 0.4))


class _Weather:
    """Shared state in grid-cell units: anomaly ``q [lat, lon]`` (dimensionless, about ±1.5) relaxed towards
    3-6 Gaussian sources that ride the wind and wax and wane, advected semi-Lagrangian by a wind (cells/step)
    made of a drift turning slowly round the compass plus travelling vortices."""

    def __init__(self, spec: SyntheticSpec) -> None:
        rng = np.random.default_rng((spec.seed, 0))
        # Separate streams, so noise=0 and noise>0 see the same weather.
        self.spec, self.rng, self.noise_rng = spec, rng, np.random.default_rng((spec.seed, 2))
        lat, lon = grid(spec)
        ny, nx = self.ny, self.nx = spec.n_lat, spec.n_lon
        self.y, self.x = np.mgrid[0:ny, 0:nx].astype(np.float32)
        self.taper = np.sin(np.pi * (self.y[:, :1] + 0.5) / ny)  # [lat, 1]: no flow through the lat edges
        self.sinlat = np.sin(np.deg2rad(lat)).astype(np.float32)[:, None]  # [lat, 1]
        self.sin2 = self.sinlat**2
        self.lon_hours = (lon / 15).astype(np.float32)[None, :]  # [1, lon] local solar time offset
        self.land = land_mask(spec) if spec.land_mask else None
        first, second = time_axis(spec, 2)
        self.sub_daily = pd.Timedelta(second - first) < pd.Timedelta(days=1)  # else the diurnal cycle aliases
        self.length = max(0.08 * nx, 2.0)  # typical feature width, cells
        k = rng.integers(3, 7)
        self.bx, self.by = rng.uniform(0, nx, k), rng.uniform(0, ny, k)  # source centres, cells
        self.width = rng.uniform(0.7, 1.3, k) * self.length
        self.amp = (-1.0) ** np.arange(k) * rng.uniform(1.5, 2.5, k)  # alternate signs: both highs and lows
        self.life = rng.uniform(40, 160, k)  # steps from birth to death
        self.born = -rng.uniform(0, self.life)  # step of each source's current birth
        self.turn, self.turn_phase = rng.uniform(200, 500), rng.uniform(0, TWO_PI)  # steps per turn of the drift
        self.eddy, self.eddy_phase = rng.uniform(100, 300), rng.uniform(0, TWO_PI)  # vortex period, steps
        self.q = self._sources(0)
        self.q_slow = self.q.copy()  # the ocean's slow memory of the anomaly

    def wind(self, n: int, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Wind ``u, v`` in cells per step at step ``n``, any shape, at most ~1.4; ``v`` before the edge taper."""
        # A westerly drift of 0.9 cells/step whose direction swings slowly up to 60° either side of east.
        theta = math.pi / 3 * math.sin(TWO_PI * n / self.turn + self.turn_phase)
        # Vortices from a streamfunction sin(2x')sin(πy'): non-divergent, periodic in lon.
        phase = TWO_PI * (2 * x / self.nx + n / self.eddy) + self.eddy_phase
        u = 0.9 * math.cos(theta) - 0.15 * self.nx / self.ny * np.sin(phase) * np.cos(np.pi * (y + 0.5) / self.ny)
        v = 0.9 * math.sin(theta) + 0.5 * np.cos(phase)
        return u, v

    def _sources(self, n: int) -> np.ndarray:
        """Sum of the Gaussian sources ``[lat, lon]`` at step ``n``; each grows from 0 to ``amp`` and back."""
        # Fade out towards the lat edges, where a source leaving one edge re-enters at the other.
        amp = self.amp * np.sin(np.pi * (n - self.born) / self.life) ** 2 * np.sin(np.pi * self.by / self.ny)  # [K]
        gx = np.exp(-0.5 * (_wrap(np.arange(self.nx) - self.bx[:, None], self.nx) / self.width[:, None]) ** 2)
        gy = np.exp(-0.5 * ((np.arange(self.ny) - self.by[:, None]) / self.width[:, None]) ** 2)  # [K, lat]
        return ((gy * amp[:, None]).T @ gx).astype(np.float32)  # [lat, K] @ [K, lon] -> [lat, lon]

    def step(self, n: int, day: float, hour: float) -> dict[str, np.ndarray]:
        """Fields ``[lat, lon]`` float32 of every requested variable at step ``n``, then advance one step."""
        self.u, self.v = self.wind(n, self.x, self.y)
        self.v *= self.taper
        self.season = math.cos(TWO_PI * (day - 20) / YEAR_DAYS.get(self.spec.calendar, 365.25))  # +1 ~20 Jan
        self.ocean_season = math.cos(TWO_PI * (day - 60) / YEAR_DAYS.get(self.spec.calendar, 365.25))
        self.hour = hour
        names = self.spec.variables
        noise = (self.noise_rng.standard_normal((len(names), self.ny, self.nx), dtype=np.float32) * self.spec.noise
                 if self.spec.noise > 0 else np.zeros((len(names), 1, 1), np.float32))
        fields = {name: getattr(self, f"_{name}")(noise[i] * NOISE_SCALE[name]) for i, name in enumerate(names)}
        self._advance(n)
        return fields

    def _advance(self, n: int) -> None:
        q = _bilinear(self.q, self.x - self.u, self.y - self.v)  # departure points one step upwind
        q += DIFFUSION * _laplacian(q)
        u, v = self.wind(n, self.bx, self.by)
        self.bx, self.by = (self.bx + u) % self.nx, (self.by + v) % self.ny
        dead = n + 1 - self.born >= self.life  # reborn elsewhere
        self.born[dead] = n + 1
        self.bx[dead] = self.rng.uniform(0, self.nx, dead.sum())
        self.by[dead] = self.rng.uniform(0, self.ny, dead.sum())
        self.q = RELAX * q + (1 - RELAX) * self._sources(n + 1)
        self.q_slow += 0.05 * (self.q - self.q_slow)

    def _t2m(self, eps: np.ndarray) -> np.ndarray:
        t2m = 288 - 30 * self.sin2 - 10 * self.sinlat * self.season + 6 * self.q + eps
        if self.sub_daily:  # peak at 15 h local solar time, a wave running west with the sun
            t2m = t2m + 3 * np.cos(TWO_PI * (self.hour + self.lon_hours - 15) / 24)
        return t2m

    def _tp(self, eps: np.ndarray) -> np.ndarray:
        # Only the strongest positive anomalies rain: mostly zeros with sharp positive cells.
        rain = np.maximum(self.q - 0.3 + eps, 0)
        return 8 * rain * np.sqrt(rain)  # rain**1.5, at a fraction of the cost of pow

    def _sst(self, eps: np.ndarray) -> np.ndarray:
        sst = 301 - 28 * self.sin2 - 3 * self.sinlat * self.ocean_season + 1.5 * self.q_slow + eps
        sst = np.maximum(sst, 271.35)  # sea water freezes at -1.8 °C
        return sst if self.land is None else np.where(self.land, np.nan, sst)

    def _z500(self, eps: np.ndarray) -> np.ndarray:
        return G * (5880 - 700 * self.sin2 - 60 * self.sinlat * self.season + 80 * self.q) + eps

    def _u10(self, eps: np.ndarray) -> np.ndarray:
        # Geostrophic part: flow along the anomaly's contours, clockwise round highs in the north.
        return 5 * self.u - 3 * self.length * np.sign(self.sinlat) * np.gradient(self.q, axis=0) + eps

    def _v10(self, eps: np.ndarray) -> np.ndarray:
        dq_dx = 0.5 * (np.roll(self.q, -1, axis=1) - np.roll(self.q, 1, axis=1))
        return 5 * self.v + 3 * self.length * np.sign(self.sinlat) * dq_dx + eps


def _day_and_hour(times: xr.CFTimeIndex | pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """Day of year from 0 (fractional) and UTC hour, ``[time]`` float64, on the index's own calendar."""
    hour = np.asarray(times.hour, float) + np.asarray(times.minute, float) / 60
    return np.asarray(times.dayofyear, float) - 1 + hour / 24, hour


def _dataset(spec: SyntheticSpec, data: dict[str, np.ndarray], times: pd.Index) -> xr.Dataset:
    """Wrap ``data[name]: [time, lat, lon]`` float32 as a CF dataset."""
    lat, lon = grid(spec)
    coords = {
        "time": ("time", times, {"standard_name": "time", "long_name": "time", "axis": "T"}),
        "latitude": ("latitude", lat, {"units": "degrees_north", "standard_name": "latitude",
                                       "long_name": "latitude", "axis": "Y"}),
        "longitude": ("longitude", lon, {"units": "degrees_east", "standard_name": "longitude",
                                         "long_name": "longitude", "axis": "X"}),
    }
    data_vars = {}
    for name, values in data.items():
        standard_name, long_name, units = VARIABLES[name]
        attrs = {"units": units, "standard_name": standard_name, "long_name": long_name}
        data_vars[name] = (DIMS, values, attrs | ({"cell_methods": "time: sum"} if name == "tp" else {}))
    attrs = {"Conventions": "CF-1.8", "title": "Synthetic weather maps", "source": "forecast.data.synthetic",
             "history": f"Generated by forecast.data.synthetic from {spec!r}."}
    return xr.Dataset(data_vars, coords, attrs)


def _blocks(spec: SyntheticSpec, sizes: Sequence[int]) -> Iterator[xr.Dataset]:
    """Consecutive datasets of ``sizes[i]`` steps; the weather state runs on from one block to the next."""
    times = time_axis(spec)
    day, hour = _day_and_hour(times)
    weather = _Weather(spec)
    start = 0
    for size in sizes:
        data = {name: np.empty((size, spec.n_lat, spec.n_lon), np.float32) for name in spec.variables}
        for i, n in enumerate(range(start, start + size)):
            for name, field in weather.step(n, day[n], hour[n]).items():
                data[name][i] = field
        yield _dataset(spec, data, times[start : start + size])
        start += size


def iter_blocks(spec: SyntheticSpec, block_steps: int) -> Iterator[xr.Dataset]:
    """The series as in-memory datasets of ``block_steps`` steps (the last may be shorter), in time order."""
    full, rest = divmod(spec.n_times, block_steps)
    yield from _blocks(spec, [block_steps] * full + ([rest] if rest else []))


def synthetic_dataset(spec: SyntheticSpec) -> xr.Dataset:
    """The whole series in memory ``[time, latitude, longitude]`` float32 (small sizes: tests, demo)."""
    return next(_blocks(spec, [spec.n_times]))


def _encoding(ds: xr.Dataset, spec: SyntheticSpec) -> dict[str, dict]:
    t0 = time_axis(spec, 1)[0]
    encoding: dict[str, dict] = {name: {"dtype": "float32"} for name in ds.data_vars}
    encoding["time"] = {"units": f"hours since {t0.strftime('%Y-%m-%d %H:%M:%S')}", "calendar": spec.calendar,
                        "dtype": "float64"}
    encoding["latitude"] = encoding["longitude"] = {"_FillValue": None}  # CF: coordinates have no missing values
    return encoding


def write_synthetic(directory: str | Path, spec: SyntheticSpec, *, n_files: int = 4, prefix: str = "synthetic",
                    engine: str = "netcdf4") -> list[Path]:
    """Stream the series into ``n_files`` CF NetCDF files split along time; return their paths in time order.

    Each file is generated, written to a temporary name and renamed into place before the next is
    generated, so memory is bounded by one file's block.
    """
    if not 1 <= n_files <= spec.n_times:
        raise ValueError(f"n_files must be between 1 and n_times ({spec.n_times}); got {n_files}.")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    width = max(3, len(str(n_files - 1)))
    sizes = [len(part) for part in np.array_split(np.arange(spec.n_times), n_files)]
    paths = []
    for i, block in enumerate(_blocks(spec, sizes)):
        path = directory / f"{prefix}_{i:0{width}d}.nc"
        _write_atomic(block, path, engine, _encoding(block, spec))
        log.debug("wrote %s (%d steps)", path, block.sizes["time"])
        paths.append(path)
    return paths


def _write_atomic(ds: xr.Dataset, path: Path, engine: str, encoding: dict[str, dict]) -> None:
    """Write to a hidden temporary name beside ``path``, then rename: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        ds.to_netcdf(tmp, engine=engine, encoding=encoding)  # type: ignore[call-overload]
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
