"""Shared fixtures: small self-describing CF files written by xarray, and the CLI run in-process."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from forecast.data.synthetic import SyntheticSpec, write_synthetic
from pipelines.cli import main as cli_main


def encoded_values(n_time: int, n_lat: int, n_lon: int, offset: float = 0.0) -> np.ndarray:
    """A value that names its own place: 1000·t + 10·i + j/10 (+ offset), so a slicing bug shows as a wrong number."""
    t, i, j = np.meshgrid(np.arange(n_time), np.arange(n_lat), np.arange(n_lon), indexing="ij")
    return (1000.0 * t + 10.0 * i + 0.1 * j + offset).astype(np.float32)


def cf_dataset(
    times: Sequence | pd.Index,
    lat: np.ndarray | None = None,
    lon: np.ndarray | None = None,
    variables: Sequence[str] = ("t2m", "tp"),
    dims: tuple[str, str, str] = ("time", "lat", "lon"),
    time_offset: int = 0,
) -> xr.Dataset:
    """A CF dataset whose variable ``k`` holds ``encoded_values + 1e7·k``, with units and standard names."""
    lat = np.linspace(-60, 60, 6) if lat is None else lat
    lon = np.arange(0, 360, 30.0) if lon is None else lon
    shape = (len(times), len(lat), len(lon))
    data = {}
    for k, name in enumerate(variables):
        values = encoded_values(*shape, offset=1e7 * k) + 1000.0 * time_offset
        data[name] = (dims, values, {"units": "K", "standard_name": "air_temperature", "long_name": name})
    coords = {dims[0]: times, dims[1]: lat, dims[2]: lon}
    ds = xr.Dataset(data, coords=coords)
    ds.attrs["Conventions"] = "CF-1.8"
    return ds


def write_split(ds: xr.Dataset, directory: Path, n_files: int, dim: str = "time") -> list[Path]:
    """Write ``ds`` as ``n_files`` NetCDF files split along ``dim``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, part in enumerate(np.array_split(np.arange(ds.sizes[dim]), n_files)):
        path = directory / f"part_{k:03d}.nc"
        ds.isel({dim: part}).to_netcdf(path)
        paths.append(path)
    return paths


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys):
    """Run ``forecast <args>`` in this process; returns exit code, stdout and stderr."""

    def run(*args: str) -> CliResult:
        code = cli_main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def six_hourly() -> pd.DatetimeIndex:
    return pd.date_range("2001-01-01", periods=40, freq="6h")


@pytest.fixture
def source_dir(tmp_path, six_hourly) -> Path:
    """Four files of a 40-step, 6×12 grid, two-variable dataset."""
    write_split(cf_dataset(six_hourly), tmp_path / "src", 4)
    return tmp_path / "src"


@pytest.fixture(scope="session")
def advecting_store(tmp_path_factory) -> Path:
    """600 six-hourly maps of two advected variables on a 16×32 grid, prepared with the default splits."""
    root = tmp_path_factory.mktemp("advecting")
    write_synthetic(root / "src", SyntheticSpec(n_times=600, n_lat=16, n_lon=32, seed=3), n_files=3)
    store = root / "store.zarr"
    source = str(root / "src" / "*.nc")
    assert cli_main(["prepare", "--source", source, "--variables", "t2m,tp", "--output", str(store)]) == 0
    return store


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` run where CUDA is; elsewhere (CI) they are skipped, saying why."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
