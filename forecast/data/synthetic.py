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

from forecast.atomic import write_then_rename

log = logging.getLogger(__name__)

G = 9.80665  # m s-2: geopotential = G * geopotential height
TWO_PI = 2 * math.pi
DIMS = ("time", "latitude", "longitude")
# name -> (standard_name, long_name, units, scale that `noise` is relative to); formulas: `_Weather._<name>`.
VARIABLES: dict[str, tuple[str, str, str, float]] = {
    "t2m": ("air_temperature", "2 metre temperature", "K", 10.0),
    "tp": ("precipitation_amount", "total precipitation over one time step", "kg m-2", 1.0),
    "sst": ("sea_surface_temperature", "sea surface temperature", "K", 5.0),
    "z500": ("geopotential", "geopotential at 500 hPa", "m2 s-2", 1000.0),
    "u10": ("eastward_wind", "10 metre eastward wind", "m s-1", 5.0),
    "v10": ("northward_wind", "10 metre northward wind", "m s-1", 5.0),
}
YEAR_DAYS = {"360_day": 360.0, "noleap": 365.0, "365_day": 365.0, "all_leap": 366.0, "366_day": 366.0}
RELAX = math.exp(-1 / 8)  # the anomaly forgets its past in ~8 steps, so sources can grow and decay features
DIFFUSION = 0.05  # cells² per step, on top of the smoothing that bilinear interpolation does anyway


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate: sizes, variables, time axis (any pandas step, any cftime calendar) and grid.

    ``noise`` is the standard deviation of white noise relative to each variable's scale (10 K for t2m);
    ``land_mask`` blanks ``sst`` over smooth random continents.
    """

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
        if self.n_times < 1 or self.n_lat < 2 or self.n_lon < 2 or self.noise < 0:
            raise ValueError(f"Synthetic spec needs n_times >= 1, n_lat >= 2, n_lon >= 2 and noise >= 0: {self}.")
        if not -90 <= self.lat_range[0] < self.lat_range[1] <= 90:
            raise ValueError(f"Synthetic lat_range {self.lat_range} must increase within [-90, 90].")


def grid(spec: SyntheticSpec) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres: latitude ``[n_lat]`` ascending (degrees_north), longitude ``[n_lon]`` (degrees_east)."""
    (lat0, lat1), (lon0, lon1) = spec.lat_range, spec.lon_range
    lat = lat0 + (lat1 - lat0) / spec.n_lat * (np.arange(spec.n_lat) + 0.5)
    lon = lon0 + (lon1 - lon0) / spec.n_lon * np.arange(spec.n_lon)  # end exclusive: lon1 wraps onto lon0
    return lat, lon


def time_axis(spec: SyntheticSpec, periods: int | None = None) -> xr.CFTimeIndex | pd.DatetimeIndex:
    """The first ``periods`` (default all) valid times: numpy datetimes for "standard", else cftime objects."""
    periods = spec.n_times if periods is None else periods
    use_cftime = spec.calendar != "standard"
    return xr.date_range(spec.start, periods=periods, freq=spec.freq, calendar=spec.calendar, use_cftime=use_cftime)


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


def _wrap(d: np.ndarray, n: int) -> np.ndarray:
    """Shortest signed distance on a periodic axis of ``n`` cells."""
    return (d + n / 2) % n - n / 2


def _bilinear(field: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample ``field [lat, lon]`` at fractional cell positions ``x, y``; periodic in lon, clamped in lat."""
    ny, nx = field.shape
    # Wrap by padding columns rather than `% nx` on every index: integer modulo was the slowest step.
    pad = min(int(max(-x.min(), x.max() - nx, 0)) + 2, nx)
    wide = np.concatenate([field[:, nx - pad :], field, field[:, :pad]], axis=1).ravel()  # [lat*(lon+2*pad)]
    width = nx + 2 * pad
    x, y = np.clip(x, 1 - pad, nx + pad - 2), np.clip(y, 0, ny - 1)
    x0, y0 = np.floor(x), np.minimum(np.floor(y), ny - 2)
    fx, fy = x - x0, y - y0
    sw = y0.astype(np.int32) * width + x0.astype(np.int32) + pad  # flat index of each south-west neighbour
    south = wide.take(sw) * (1 - fx) + wide.take(sw + 1) * fx
    north = wide.take(sw + width) * (1 - fx) + wide.take(sw + width + 1) * fx
    return (1 - fy) * south + fy * north


def _laplacian(q: np.ndarray) -> np.ndarray:
    """Five-point Laplacian of ``q [lat, lon]`` in cells⁻²; periodic in lon, no flux through the lat edges."""
    rows = np.concatenate([q[:1], q, q[-1:]])
    return np.roll(q, 1, axis=1) + np.roll(q, -1, axis=1) + rows[:-2] + rows[2:] - 4 * q


class _Weather:
    """The state shared by all variables, in grid cells and steps.

    Anomaly ``q [lat, lon]`` (dimensionless, mostly within ±2) is advected semi-Lagrangian by a wind
    made of a westerly drift whose direction swings slowly plus travelling vortices, diffused, and
    relaxed towards 3-6 Gaussian sources that ride the same wind and grow from nothing and decay.
    """

    def __init__(self, spec: SyntheticSpec) -> None:
        rng = np.random.default_rng((spec.seed, 0))
        # Separate streams, so that noise=0 and noise>0 see the same weather.
        self.spec, self.rng, self.noise_rng = spec, rng, np.random.default_rng((spec.seed, 2))
        lat, lon = grid(spec)
        ny, nx = self.ny, self.nx = spec.n_lat, spec.n_lon
        self.y, self.x = np.mgrid[0:ny, 0:nx].astype(np.float32)
        self.taper = np.sin(np.pi * (self.y[:, :1] + 0.5) / ny)  # [lat, 1]: no flow through the lat edges
        self.sinlat = np.sin(np.deg2rad(lat)).astype(np.float32)[:, None]  # [lat, 1]
        self.sin2 = self.sinlat**2
        self.coriolis = np.clip(4 * self.sinlat, -1, 1)  # [lat, 1]: sign of f, fading out near the equator
        self.lon_hours = (lon / 15).astype(np.float32)[None, :]  # [1, lon]: local solar time minus UTC
        self.land = land_mask(spec) if spec.land_mask else None
        first, second = time_axis(spec, 2)
        self.sub_daily = pd.Timedelta(second - first) < pd.Timedelta(days=1)  # else a diurnal cycle aliases
        self.year = YEAR_DAYS.get(spec.calendar, 365.25)
        self.length = max(0.08 * nx, 2.0)  # typical feature width, cells
        k = rng.integers(3, 7)
        self.bx, self.by = rng.uniform(0, nx, k), rng.uniform(0, ny, k)  # source centres, cells
        self.width = rng.uniform(0.7, 1.3, k) * self.length
        self.amp = (-1.0) ** np.arange(k) * rng.uniform(1.5, 2.5, k)  # alternate signs: highs and lows
        self.life = rng.uniform(40, 160, k)  # steps from birth to death
        self.born = -rng.uniform(0, self.life)  # step of each source's latest birth
        self.turn, self.turn_phase = rng.uniform(200, 500), rng.uniform(0, TWO_PI)  # drift swing period, steps
        self.eddy, self.eddy_phase = rng.uniform(100, 300), rng.uniform(0, TWO_PI)  # vortex period, steps
        self.pairs = max(1, round(nx / ny))  # vortex pairs round the domain: keeps them roughly round
        self.q = self._sources(0)
        self.q_slow = self.q.copy()  # the ocean's slow memory of the anomaly

    def wind(self, n: int, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Wind ``u, v`` (cells/step, at most ~1.5) at step ``n`` and positions ``x, y``; ``v`` untapered."""
        # A 0.9 cells/step drift whose direction swings slowly up to 60° either side of east.
        theta = math.pi / 3 * math.sin(TWO_PI * n / self.turn + self.turn_phase)
        # Vortices from the streamfunction sin(pairs·2πx/nx)·sin(πy/ny): non-divergent, periodic in lon.
        phase = TWO_PI * (self.pairs * x / self.nx + n / self.eddy) + self.eddy_phase
        u_eddy = 0.25 * self.nx / (self.pairs * self.ny) * np.sin(phase) * np.cos(np.pi * (y + 0.5) / self.ny)
        return 0.9 * math.cos(theta) - u_eddy, 0.9 * math.sin(theta) + 0.5 * np.cos(phase)

    def _sources(self, n: int) -> np.ndarray:
        """Sum of the Gaussian sources ``[lat, lon]`` at step ``n``; each grows from 0 to ``amp`` and back."""
        # Faded towards the lat edges, where a source leaving one edge re-enters at the other.
        amp = self.amp * np.sin(np.pi * (n - self.born) / self.life) ** 2 * np.sin(np.pi * self.by / self.ny)
        gx = np.exp(-0.5 * (_wrap(np.arange(self.nx) - self.bx[:, None], self.nx) / self.width[:, None]) ** 2)
        gy = np.exp(-0.5 * ((np.arange(self.ny) - self.by[:, None]) / self.width[:, None]) ** 2)  # [K, lat]
        return ((gy * amp[:, None]).T @ gx).astype(np.float32)  # [lat, K] @ [K, lon] -> [lat, lon]

    def step(self, n: int, day: float, hour: float) -> dict[str, np.ndarray]:
        """Fields ``[lat, lon]`` float32 of the spec's variables at step ``n`` (day of year from 0, UTC
        hour), then advance the state to step ``n + 1``."""
        self.u, self.v = self.wind(n, self.x[:1], self.y[:, :1])  # [lat, lon] and [1, lon]
        self.v = self.v * self.taper  # [lat, lon]
        self.season = math.cos(TWO_PI * (day - 20) / self.year)  # +1 around 20 January: northern winter
        self.ocean_season = math.cos(TWO_PI * (day - 60) / self.year)  # the sea lags the air
        self.hour = hour
        noise = self._noise()
        names = self.spec.variables
        fields = {name: getattr(self, f"_{name}")(noise[i] * VARIABLES[name][3]) for i, name in enumerate(names)}
        self._advance(n)
        return fields

    def _noise(self) -> np.ndarray:
        """White noise ``[variable, lat, lon]`` of std ``spec.noise``: uniform, 5x cheaper than normal."""
        if self.spec.noise == 0:
            return np.zeros((len(self.spec.variables), 1, 1), np.float32)
        shape = (len(self.spec.variables), self.ny, self.nx)
        return (self.noise_rng.random(shape, np.float32) - 0.5) * np.float32(math.sqrt(12) * self.spec.noise)

    def _advance(self, n: int) -> None:
        q = _bilinear(self.q, self.x - self.u, self.y - self.v)  # value at the departure point, one step upwind
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
        if self.sub_daily:  # peak at 15 h local solar time: a wave running west with the sun
            t2m += 3 * np.cos(TWO_PI * (self.hour + self.lon_hours - 15) / 24)
        return t2m

    def _tp(self, eps: np.ndarray) -> np.ndarray:
        # Only the strongest positive anomalies rain: mostly zeros with sharp positive cells.
        rain = np.maximum(self.q - 0.2 + eps, 0)
        return 8 * rain * np.sqrt(rain)  # rain**1.5 at a fraction of the cost of pow

    def _sst(self, eps: np.ndarray) -> np.ndarray:
        sst = 301 - 28 * self.sin2 - 3 * self.sinlat * self.ocean_season + 1.5 * self.q_slow + eps
        sst = np.maximum(sst, 271.35)  # sea water freezes at -1.8 °C
        return sst if self.land is None else np.where(self.land, np.nan, sst)

    def _z500(self, eps: np.ndarray) -> np.ndarray:
        return G * (5880 - 700 * self.sin2 - 60 * self.sinlat * self.season + 80 * self.q) + eps

    def _u10(self, eps: np.ndarray) -> np.ndarray:
        # Geostrophic part: along the anomaly's contours, clockwise round highs in the north.
        return 5 * self.u - 3 * self.length * self.coriolis * np.gradient(self.q, axis=0) + eps

    def _v10(self, eps: np.ndarray) -> np.ndarray:
        dq_dx = 0.5 * (np.roll(self.q, -1, axis=1) - np.roll(self.q, 1, axis=1))
        return 5 * self.v + 3 * self.length * self.coriolis * dq_dx + eps


def _dataset(spec: SyntheticSpec, data: dict[str, np.ndarray], times: pd.Index) -> xr.Dataset:
    """Wrap ``data[name]: [time, lat, lon]`` float32 as a CF dataset."""
    lat, lon = grid(spec)
    coords = {
        "time": ("time", times, {"standard_name": "time", "long_name": "time", "axis": "T"}),
        "latitude": ("latitude", lat, {"units": "degrees_north", "standard_name": "latitude", "axis": "Y"}),
        "longitude": ("longitude", lon, {"units": "degrees_east", "standard_name": "longitude", "axis": "X"}),
    }
    data_vars = {}
    for name, values in data.items():
        standard_name, long_name, units, _ = VARIABLES[name]
        attrs = {"units": units, "standard_name": standard_name, "long_name": long_name}
        data_vars[name] = (DIMS, values, attrs | ({"cell_methods": "time: sum"} if name == "tp" else {}))
    attrs = {"Conventions": "CF-1.8", "title": "Synthetic weather maps", "source": "forecast.data.synthetic",
             "history": f"Generated by forecast.data.synthetic from {spec!r}."}  # fmt: skip
    return xr.Dataset(data_vars, coords, attrs)


def _blocks(spec: SyntheticSpec, sizes: Sequence[int]) -> Iterator[xr.Dataset]:
    """Consecutive datasets of ``sizes[i]`` steps; the weather state runs on from one block to the next."""
    times = time_axis(spec)
    hour = np.asarray(times.hour, float) + np.asarray(times.minute, float) / 60
    day = np.asarray(times.day_of_year, float) - 1 + hour / 24  # on the index's own calendar
    weather, start = _Weather(spec), 0
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
    """The whole series in memory, ``[time, latitude, longitude]`` float32 (small sizes: tests, demo)."""
    return next(_blocks(spec, [spec.n_times]))


def write_synthetic(
    directory: str | Path,
    spec: SyntheticSpec,
    *,
    n_files: int = 4,
    prefix: str = "synthetic",
    engine: str = "netcdf4",
    compression: bool = True,
) -> list[Path]:
    """Stream the series into ``n_files`` CF NetCDF files split along time; return their paths in time order.

    Each file's block is generated, written under a temporary name and renamed into place before the
    next is generated, so memory is bounded by one file's block. ``compression``: zlib level 1, one
    map per chunk.
    """
    if not 1 <= n_files <= spec.n_times:
        raise ValueError(f"n_files must be between 1 and n_times ({spec.n_times}); got {n_files}.")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    digits = max(3, len(str(n_files - 1)))
    sizes = [len(part) for part in np.array_split(np.arange(spec.n_times), n_files)]
    t0 = time_axis(spec, 1)[0].strftime("%Y-%m-%d %H:%M:%S")
    packing = {"zlib": True, "complevel": 1, "chunksizes": (1, spec.n_lat, spec.n_lon)} if compression else {}
    encoding: dict[str, dict] = {name: {"dtype": "float32", **packing} for name in spec.variables}
    encoding["time"] = {"units": f"hours since {t0}", "calendar": spec.calendar, "dtype": "float64"}
    encoding["latitude"] = encoding["longitude"] = {"_FillValue": None}  # CF: coordinates are never missing
    paths = []
    for i, block in enumerate(_blocks(spec, sizes)):
        paths.append(directory / f"{prefix}_{i:0{digits}d}.nc")
        write_then_rename(paths[-1], lambda tmp, block=block: block.to_netcdf(tmp, engine=engine, encoding=encoding))
        log.debug("Wrote %s (%d steps).", paths[-1], block.sizes["time"])
    return paths
