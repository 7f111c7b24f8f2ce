"""prepare writes what it promises: right values, training-only statistics, masks, grids, calendars."""

from __future__ import annotations

import cftime
import dask
import numpy as np
import pytest
import xarray as xr
from dask.callbacks import Callback

from forecast.data.config import DataConfig, Period, Region, Splits, WindowConfig
from forecast.data.prepare import plan
from forecast.data.prepare import prepare as run_prepare
from forecast.data.store import latitude_weights, open_store
from tests.conftest import cf_dataset, encoded_values, write_split


def physical(store_path):
    """The store's fields back in physical units: ``[time, channel, lat, lon]``."""
    ds = xr.open_zarr(store_path, consolidated=False)
    return ds["fields"].values * ds["std"].values[None, :, None, None] + ds["mean"].values[None, :, None, None]


def config(source, output, **kwargs) -> DataConfig:
    return DataConfig(source=str(source), variables=["t2m", "tp"], store=str(output), **kwargs)


def prepare(config: DataConfig, windows: WindowConfig | None = None):
    """The store's path (``prepare`` also returns the windows that fit it)."""
    return run_prepare(config, windows)[0]


def test_store_holds_source_values_in_order_across_files(source_dir, tmp_path):
    path = prepare(config(source_dir / "*.nc", tmp_path / "s.zarr"), WindowConfig(2, 2))
    expected = encoded_values(40, 6, 12)
    # float32 normalised values keep ~7 digits of the std (~1e4 here): 0.01 in physical units
    np.testing.assert_allclose(physical(path)[:, 0], expected, atol=0.01)
    np.testing.assert_allclose(physical(path)[:, 1], expected + 1e7, atol=0.01)
    info = open_store(path)
    assert info.channel_names == ["t2m", "tp"]
    assert info.shape == (40, 2, 6, 12)
    ds = xr.open_zarr(path, consolidated=False)
    assert ds["fields"].dtype == np.float32
    assert ds["fields"].encoding["chunks"][1:] == (2, 6, 12)
    assert list(ds["units"].values) == ["K", "K"]


def test_statistics_come_from_the_training_period_only(source_dir, tmp_path):
    splits = Splits(train=Period("2001-01-01", "2001-01-05T18"), val=Period("2001-01-06", "2001-01-08"))
    path = prepare(config(source_dir / "*.nc", tmp_path / "s.zarr", splits=splits))
    info = open_store(path)
    train = encoded_values(40, 6, 12)[:20]
    np.testing.assert_allclose(info.mean[0], train.astype(np.float64).mean(), rtol=1e-9)
    np.testing.assert_allclose(info.std[0], train.astype(np.float64).std(), rtol=1e-6)
    assert info.split_ranges["train"].stop == 20
    assert info.split_periods["val"] == ("2001-01-06T00:00", "2001-01-08T18:00")
    # the default test split takes the last 10 %
    assert (info.split_ranges["test"].start, info.split_ranges["test"].stop) == (36, 40)


def test_nan_points_are_masked_and_never_reach_the_fields(six_hourly, tmp_path):
    ds = cf_dataset(six_hourly)
    ds["tp"][:, 2, 3] = np.nan  # "land" in one channel
    ds["t2m"][5, 1, 1] = np.nan  # one missing value
    ds.to_netcdf(tmp_path / "src.nc")
    path = prepare(config(tmp_path / "src.nc", tmp_path / "s.zarr"))
    store = xr.open_zarr(path, consolidated=False)
    assert not np.isnan(store["fields"].values).any()
    mask = store["mask"].values
    assert not mask[1, 2, 3] and mask[0, 2, 3] and mask[0, 1, 1]
    assert mask.sum() == mask.size - 1
    assert store["fields"].values[5, 0, 1, 1] == 0.0  # filled with the mean (0 when normalised)
    assert store["static"].sel(static_channel="valid").values[2, 3] == 0.0


def test_longitudes_and_latitudes_are_normalised(six_hourly, tmp_path):
    lon = np.arange(-180, 180, 30.0)
    lat = np.linspace(60, -60, 6)  # north to south
    cf_dataset(six_hourly, lat=lat, lon=lon).to_netcdf(tmp_path / "src.nc")
    path = prepare(config(tmp_path / "src.nc", tmp_path / "s.zarr"))
    info = open_store(path)
    assert np.all(np.diff(info.longitude) > 0) and info.longitude.min() >= 0 and info.longitude.max() < 360
    assert np.all(np.diff(info.latitude) > 0)
    assert info.source_latitude_order == "descending"
    # the value at (lat=-60, lon=0) in the source was written at i=5 (last row), j=6 (lon 0 is 7th of -180..150)
    np.testing.assert_allclose(physical(path)[0, 0, 0, 0], 10.0 * 5 + 0.1 * 6, atol=0.01)


def test_region_across_the_dateline_and_the_prime_meridian(six_hourly, tmp_path):
    cf_dataset(six_hourly).to_netcdf(tmp_path / "src.nc")
    dateline = prepare(config(tmp_path / "src.nc", tmp_path / "a.zarr", region=Region(-30, 30, 150, -150)))
    assert list(open_store(dateline).longitude) == [150.0, 180.0, 210.0]
    meridian = prepare(config(tmp_path / "src.nc", tmp_path / "b.zarr", region=Region(-90, 90, -60, 30)))
    info = open_store(meridian)
    assert list(info.longitude) == [-60.0, -30.0, 0.0, 30.0]
    assert info.longitude_convention == "[-180, 180)"
    assert list(info.source_longitude) == [300.0, 330.0, 0.0, 30.0]
    np.testing.assert_allclose(physical(meridian)[0, 0, 0, 2], 0.0, atol=0.01)  # lon 0 is source j=0 at t=0, i=0


def test_coarsen_averages_blocks(six_hourly, tmp_path):
    cf_dataset(six_hourly).to_netcdf(tmp_path / "src.nc")
    path = prepare(config(tmp_path / "src.nc", tmp_path / "s.zarr", coarsen=2))
    assert open_store(path).shape == (40, 2, 3, 6)
    np.testing.assert_allclose(physical(path)[0, 0, 0, 0], np.mean([0.0, 0.1, 10.0, 10.1]), atol=0.01)


def test_levels_become_channels(six_hourly, tmp_path):
    levels = [500.0, 850.0]
    base = cf_dataset(six_hourly, variables=("z",))
    z = xr.concat([base["z"] + 1e6 * k for k in range(2)], dim=xr.DataArray(levels, dims="plev", name="plev"))
    xr.Dataset({"z": z.transpose("time", "plev", "lat", "lon"), "t2m": base["z"]}).to_netcdf(tmp_path / "src.nc")
    cfg = DataConfig(
        source=str(tmp_path / "src.nc"), variables=["z", "t2m"], levels=[850.0], store=str(tmp_path / "s")
    )
    info = open_store(prepare(cfg))
    assert info.channel_names == ["z850", "t2m"]
    np.testing.assert_allclose(physical(info.path)[0, 0, 0, 0], 1e6, atol=0.5)


def test_x_y_dimensions_with_1d_lat_lon_coordinates(six_hourly, tmp_path):
    ds = cf_dataset(six_hourly, dims=("time", "y", "x"))
    ds = ds.assign_coords(lat=("y", ds["y"].values), lon=("x", ds["x"].values)).drop_vars(["x", "y"])
    ds.to_netcdf(tmp_path / "src.nc")
    info = open_store(prepare(config(tmp_path / "src.nc", tmp_path / "s.zarr")))
    assert info.shape == (40, 2, 6, 12)


@pytest.mark.parametrize("calendar", ["360_day", "noleap"])
def test_non_standard_calendars_survive(tmp_path, calendar):
    times = xr.date_range("2001-02-25", periods=30, freq="1D", calendar=calendar, use_cftime=True)
    write_split(cf_dataset(times), tmp_path / "src", 3)
    info = open_store(prepare(config(tmp_path / "src" / "*.nc", tmp_path / "s.zarr"), WindowConfig(1, 1)))
    assert info.calendar == calendar
    assert isinstance(info.times[0], cftime.datetime) and info.times[0].calendar == calendar
    assert str(info.time_step) == "1D"
    assert info.gaps == []  # Feb 29/30 exist in 360_day, not in noleap: no false gap


def test_provenance_names_sources_with_checksums(source_dir, tmp_path):
    info = open_store(prepare(config(source_dir / "*.nc", tmp_path / "s.zarr")))
    sources = info.sources
    assert [s["path"].rsplit("/", 1)[1] for s in sources] == [f"part_{k:03d}.nc" for k in range(4)]
    assert all(len(s["sha256"]) == 64 and s["bytes"] > 0 for s in sources)
    assert len(info.content_hash) == 16
    np.testing.assert_allclose(info.lat_weights, latitude_weights(info.latitude))


def test_latitude_weights_are_cell_areas_with_mean_one():
    weights = latitude_weights(np.array([-45.0, 45.0]))
    np.testing.assert_allclose(weights, [1.0, 1.0])
    weights = latitude_weights(np.array([-60.0, 0.0, 60.0]))
    assert weights.mean() == pytest.approx(1.0)
    assert weights[1] > weights[0] == pytest.approx(weights[2])


def test_planning_is_lazy(source_dir, tmp_path):
    computes = []

    class Counter(Callback):
        def _start(self, dsk):
            computes.append(len(dsk))

    with Counter():
        the_plan = plan(config(source_dir / "*.nc", tmp_path / "s.zarr"))
    assert computes == []
    assert isinstance(the_plan.fields.data, dask.array.Array)
    assert not (tmp_path / "s.zarr").exists()


def test_prepare_runs_on_a_dask_distributed_cluster(source_dir, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as c:
        path = prepare(config(source_dir / "*.nc", tmp_path / "s.zarr", scheduler=c.scheduler_address))
    np.testing.assert_allclose(physical(path)[:, 0], encoded_values(40, 6, 12), atol=0.01)


def test_overwrite_replaces_a_store_atomically(source_dir, tmp_path):
    out = tmp_path / "s.zarr"
    prepare(config(source_dir / "*.nc", out))
    first = open_store(out).created
    prepare(config(source_dir / "*.nc", out, overwrite=True, coarsen=2))
    assert open_store(out).shape[2:] == (3, 6)
    assert first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr", "src"]
