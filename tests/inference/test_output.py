"""CF forecast output: WeatherBench2 layout, time coordinates in every calendar, atomic NetCDF and Zarr writes."""

from __future__ import annotations

import warnings
from pathlib import Path

import cftime
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from forecast.data.calendar import TimeStep
from forecast.data.config import DataConfig
from forecast.data.prepare import prepare
from forecast.data.store import ChannelMeta, open_store
from forecast.errors import DataError
from forecast.inference.output import (
    Grid,
    forecast_dataset,
    forecast_file_name,
    write_netcdf,
    write_zarr,
)

LATITUDE = np.array([-30.0, 0.0, 30.0])
LONGITUDE = np.array([0.0, 90.0, 180.0, 270.0])
STEP = pd.Timedelta("6h")
TIME_STEP = TimeStep(STEP)
GRID = Grid(LATITUDE, LONGITUDE)
N_LEAD = 3
ATTRS = {"model_uri": "models:/demo@champion", "run_id": "abc123", "data_checksum": "5f3f", "epoch": 7}
Z500 = ChannelMeta("z500", "z", 500.0, "m2 s-2", "geopotential", "Geopotential")
Z850 = ChannelMeta("z850", "z", 850.0, "m2 s-2", "geopotential", "Geopotential")
T2M = ChannelMeta("t2m", "t2m", None, "K", "air_temperature", "2 metre temperature")
TP = ChannelMeta("tp", "tp", None, "kg m-2", "precipitation_amount", "total precipitation")
CHANNELS = [Z500, T2M, Z850, TP]  # levels interleaved with surface fields, as a config may list them

# Inits straddling the end of February, where the three calendars disagree about the next day.
CALENDAR_CASES = {
    "standard": (
        pd.DatetimeIndex(["2001-02-28T06", "2001-02-28T18"]).values,
        np.datetime64("2001-03-01T12", "ns"),
    ),
    "360_day": (
        [cftime.datetime(2001, 2, 30, h, calendar="360_day") for h in (6, 18)],
        cftime.datetime(2001, 3, 1, 12, calendar="360_day"),
    ),
    "noleap": (
        [cftime.datetime(2001, 2, 28, h, calendar="noleap") for h in (6, 18)],
        cftime.datetime(2001, 3, 1, 12, calendar="noleap"),
    ),
}


def encoded_forecast(n_init: int, n_channel: int) -> np.ndarray:
    """``[N, T, C, H, W]`` = 10000·n + 1000·t + 100·c + 10·i + j: each value names its own place."""
    n, t, c, i, j = np.meshgrid(
        np.arange(n_init), np.arange(N_LEAD), np.arange(n_channel), np.arange(3), np.arange(4), indexing="ij"
    )
    return (10000.0 * n + 1000.0 * t + 100.0 * c + 10.0 * i + j).astype(np.float32)


def make_forecast(init_times, channels: list[ChannelMeta] = CHANNELS) -> xr.Dataset:
    values = encoded_forecast(len(init_times), len(channels))
    return forecast_dataset(values, init_times, TIME_STEP, channels, GRID, ATTRS)


def round_trip(ds: xr.Dataset, tmp_path: Path, fmt: str) -> xr.Dataset:
    if fmt == "netcdf":
        write_netcdf(ds, tmp_path / "forecast.nc")
        return xr.open_dataset(tmp_path / "forecast.nc", decode_timedelta=True).load()
    write_zarr(ds, tmp_path / "forecast.zarr")
    return xr.open_zarr(tmp_path / "forecast.zarr").load()


def init_plus_lead(ds: xr.Dataset) -> np.ndarray:
    """``[N, T]`` time + prediction_timedelta, element by element for cftime (numpy cannot add those)."""
    if ds["time"].dtype.kind == "M":
        return (ds["time"] + ds["prediction_timedelta"]).values
    leads = pd.to_timedelta(ds["prediction_timedelta"].values).to_pytimedelta()
    return np.array([[init + lead for lead in leads] for init in ds["time"].values])


@pytest.fixture
def standard_forecast() -> xr.Dataset:
    return make_forecast(CALENDAR_CASES["standard"][0])


def store_with_levels(tmp_path) -> Path:
    times = pd.date_range("2001-01-01", periods=20, freq="6h")
    grid = {"time": times, "latitude": LATITUDE, "longitude": LONGITUDE}
    rng = np.random.default_rng(0)
    z = xr.DataArray(
        rng.normal(size=(20, 2, 3, 4)),
        dims=("time", "level", "latitude", "longitude"),
        coords={**grid, "level": [500.0, 850.0]},
        attrs={"units": "m2 s-2", "standard_name": "geopotential", "long_name": "Geopotential"},
    )
    t2m = xr.DataArray(rng.normal(size=(20, 3, 4)), dims=("time", "latitude", "longitude"), coords=grid,
                       attrs={"units": "K"})
    xr.Dataset({"z": z, "t2m": t2m}).to_netcdf(tmp_path / "src.nc")
    return prepare(DataConfig(source=str(tmp_path / "src.nc"), variables=["z", "t2m"],
                              store=str(tmp_path / "store.zarr")))[0]


def test_the_store_reader_gives_every_channel_with_its_source_metadata(tmp_path):
    assert open_store(store_with_levels(tmp_path)).channels == [
        Z500,
        Z850,
        ChannelMeta("t2m", "t2m", None, "K", "", "t2m"),
    ]


def test_a_store_without_channel_coordinates_is_refused(tmp_path):
    store = store_with_levels(tmp_path)
    ds = xr.open_zarr(store, consolidated=False)
    ds.drop_vars("units").to_zarr(tmp_path / "damaged.zarr", zarr_format=3, consolidated=False)
    with pytest.raises(DataError, match="'units' is missing"):
        open_store(tmp_path / "damaged.zarr")


def test_coordinates_carry_cf_attributes(standard_forecast, tmp_path):
    ds = round_trip(standard_forecast, tmp_path, "netcdf")

    assert ds["time"].attrs["standard_name"] == "forecast_reference_time"
    assert ds["time"].attrs["long_name"]
    assert ds["prediction_timedelta"].attrs["standard_name"] == "forecast_period"
    assert ds["prediction_timedelta"].dtype.kind == "m"
    assert ds["valid_time"].attrs["standard_name"] == "time"
    assert ds["valid_time"].dims == ("time", "prediction_timedelta")
    assert ds["latitude"].attrs == {
        "units": "degrees_north",
        "standard_name": "latitude",
        "long_name": "latitude",
        "axis": "Y",
    }
    assert ds["longitude"].attrs["units"] == "degrees_east"
    assert ds["longitude"].attrs["axis"] == "X"
    assert ds.attrs == {"Conventions": "CF-1.8", **ATTRS}


@pytest.mark.parametrize("fmt", ["netcdf", "zarr"])
@pytest.mark.parametrize("calendar", list(CALENDAR_CASES))
def test_valid_time_is_init_plus_lead_after_a_round_trip(calendar, fmt, tmp_path):
    init_times, last_valid = CALENDAR_CASES[calendar]
    ds = round_trip(make_forecast(init_times), tmp_path, fmt)

    assert list(pd.to_timedelta(ds["prediction_timedelta"].values)) == [STEP, 2 * STEP, 3 * STEP]
    np.testing.assert_array_equal(ds["valid_time"].values, init_plus_lead(ds))
    assert ds["valid_time"].values[-1, -1] == last_valid  # 18:00 + 18 h, across each calendar's month end
    if calendar != "standard":
        assert ds["time"].values[0].calendar == calendar


def test_time_encoding_is_hours_since_the_first_init_in_its_calendar(tmp_path):
    write_netcdf(make_forecast(CALENDAR_CASES["360_day"][0]), tmp_path / "forecast.nc")
    raw = xr.open_dataset(tmp_path / "forecast.nc", decode_times=False, decode_timedelta=False)

    for name in ("time", "valid_time"):
        assert raw[name].attrs["units"] == "hours since 2001-02-30 06:00:00"
        assert raw[name].attrs["calendar"] == "360_day"
    # Inits at 06:00 and 18:00, leads 6, 12, 18 h, counted from the first init.
    np.testing.assert_array_equal(raw["valid_time"].values, [[6, 12, 18], [18, 24, 30]])


def test_each_variable_carries_its_units_and_names(standard_forecast, tmp_path):
    ds = round_trip(standard_forecast, tmp_path, "netcdf")

    assert set(ds.data_vars) == {"z", "t2m", "tp"}
    for meta in (Z500, T2M, TP):
        assert ds[meta.variable].dtype == np.float32
        assert ds[meta.variable].attrs["units"] == meta.units
        assert ds[meta.variable].attrs["standard_name"] == meta.standard_name
        assert ds[meta.variable].attrs["long_name"] == meta.long_name


def test_empty_metadata_is_left_out_rather_than_written_empty():
    bare = ChannelMeta("sst", "sst", None, "K", "", "")
    ds = make_forecast(CALENDAR_CASES["standard"][0], [bare])

    assert ds["sst"].attrs == {"units": "K"}


def test_level_channels_of_one_variable_share_a_level_dimension(standard_forecast, tmp_path):
    ds = round_trip(standard_forecast, tmp_path, "zarr")

    assert ds["z"].dims == ("time", "prediction_timedelta", "level", "latitude", "longitude")
    assert ds["t2m"].dims == ("time", "prediction_timedelta", "latitude", "longitude")
    assert list(ds["level"].values) == [500.0, 850.0]
    # Channel indices in CHANNELS: z500 = 0, t2m = 1, z850 = 2, tp = 3; value = 10000·n + 1000·t + 100·c + 10·i + j.
    assert ds["z"].sel(level=500).isel(time=1, prediction_timedelta=2, latitude=1, longitude=3).item() == 12013
    assert ds["z"].sel(level=850).isel(time=1, prediction_timedelta=2, latitude=1, longitude=3).item() == 12213
    assert ds["tp"].isel(time=0, prediction_timedelta=1, latitude=2, longitude=0).item() == 1320


def test_a_level_a_variable_lacks_is_nan():
    t850 = ChannelMeta("t850", "t", 850.0, "K", "air_temperature", "Temperature")
    ds = make_forecast(CALENDAR_CASES["standard"][0], [Z500, Z850, t850])

    assert ds["t"].sel(level=500).isnull().all()
    assert ds["t"].sel(level=850).notnull().all()


@pytest.mark.parametrize("fmt", ["netcdf", "zarr"])
def test_nan_where_the_mask_is_invalid_survives_writing(fmt, tmp_path):
    init_times = CALENDAR_CASES["360_day"][0]
    values = encoded_forecast(len(init_times), len(CHANNELS))
    values[:, :, 1, 0, 2] = np.nan  # t2m invalid at one grid point, as over a masked land point
    ds = forecast_dataset(values, init_times, TIME_STEP, CHANNELS, GRID, ATTRS)

    t2m = round_trip(ds, tmp_path, fmt)["t2m"]

    assert t2m.isel(latitude=0, longitude=2).isnull().all()
    assert int(t2m.isnull().sum()) == len(init_times) * N_LEAD
    assert t2m.isel(time=1, prediction_timedelta=2, latitude=0, longitude=1).item() == 12101


@pytest.mark.parametrize(
    ("channels", "dims"),
    [
        (CHANNELS, {"time", "prediction_timedelta", "level", "latitude", "longitude"}),
        ([T2M, TP], {"time", "prediction_timedelta", "latitude", "longitude"}),
    ],
)
def test_zarr_store_opens_plainly_with_weatherbench2_dims(channels, dims, tmp_path):
    write_zarr(make_forecast(CALENDAR_CASES["standard"][0], channels), tmp_path / "forecast.zarr")

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(tmp_path / "forecast.zarr")

    assert set(ds.dims) == dims
    assert ds["t2m"].encoding["chunks"] == (1, N_LEAD, 3, 4)  # one init time per chunk
    assert ds["prediction_timedelta"].dtype.kind == "m"


def test_netcdf_compresses_data_and_gives_coordinates_no_fill_value(standard_forecast, tmp_path):
    write_netcdf(standard_forecast, tmp_path / "forecast.nc")
    ds = xr.open_dataset(tmp_path / "forecast.nc", decode_timedelta=True)

    for name in ds.data_vars:
        assert ds[name].encoding["zlib"]
        assert np.isnan(ds[name].encoding["_FillValue"])
    for name in ds.coords:
        assert "_FillValue" not in ds[name].encoding


def test_a_failed_netcdf_write_leaves_neither_target_nor_temporary(standard_forecast, tmp_path, monkeypatch):
    target = tmp_path / "out" / "forecast.nc"
    target.parent.mkdir()
    target.write_bytes(b"previous forecast")

    def fail_midway(self, path, *args, **kwargs):
        Path(path).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        write_netcdf(standard_forecast, target)

    assert [p.name for p in target.parent.iterdir()] == ["forecast.nc"]
    assert target.read_bytes() == b"previous forecast"


def test_a_failed_first_netcdf_write_leaves_nothing(standard_forecast, tmp_path, monkeypatch):
    def fail_midway(self, path, *args, **kwargs):
        Path(path).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", fail_midway)
    with pytest.raises(OSError):
        write_netcdf(standard_forecast, tmp_path / "forecast.nc")

    assert list(tmp_path.iterdir()) == []


def test_a_failed_zarr_write_keeps_the_old_store_and_no_temporary(standard_forecast, tmp_path, monkeypatch):
    target = tmp_path / "forecast.zarr"
    write_zarr(standard_forecast, target)
    real_to_zarr = xr.Dataset.to_zarr

    def fail_midway(self, store, *args, **kwargs):
        real_to_zarr(self, store, *args, **kwargs)
        raise OSError("killed")

    monkeypatch.setattr(xr.Dataset, "to_zarr", fail_midway)
    with pytest.raises(OSError, match="killed"):
        write_zarr(make_forecast(CALENDAR_CASES["360_day"][0]), target)

    assert [p.name for p in tmp_path.iterdir()] == ["forecast.zarr"]
    assert xr.open_zarr(target)["time"].dtype.kind == "M"  # still the standard-calendar store


def test_writing_zarr_over_an_existing_store_replaces_it(standard_forecast, tmp_path):
    target = tmp_path / "forecast.zarr"
    write_zarr(standard_forecast, target)
    write_zarr(make_forecast(CALENDAR_CASES["noleap"][0], [T2M]), target)

    ds = xr.open_zarr(target)
    assert set(ds.data_vars) == {"t2m"}
    assert ds["time"].values[0].calendar == "noleap"
    assert [p.name for p in tmp_path.iterdir()] == ["forecast.zarr"]


@pytest.mark.parametrize(
    "init_time",
    [
        np.datetime64("2001-12-01T00:00"),
        pd.Timestamp("2001-12-01"),
        cftime.datetime(2001, 12, 1, calendar="360_day"),
    ],
)
def test_file_name_stamps_the_init_time(init_time):
    assert forecast_file_name("demo", init_time) == "demo_20011201T0000.nc"


def test_forecast_dataset_rejects_values_that_do_not_fit():
    with pytest.raises(ValueError, match="shape"):
        forecast_dataset(encoded_forecast(2, 3), CALENDAR_CASES["standard"][0], TIME_STEP, CHANNELS, GRID, ATTRS)


def test_forecast_dataset_rejects_attrs_that_cannot_be_stored():
    with pytest.raises(TypeError, match="created"):
        forecast_dataset(
            encoded_forecast(2, 4),
            CALENDAR_CASES["standard"][0],
            TIME_STEP,
            CHANNELS,
            GRID,
            {"created": pd.Timestamp("2026-01-01")},
        )


@pytest.mark.parametrize("calendar", ["standard", "360_day", "noleap"])
def test_monthly_leads_are_calendar_months_and_valid_times_mid_month(calendar, tmp_path):
    step = TimeStep(months=1, anchor="middle")
    init = cftime.datetime(2001, 11, 16, 0, calendar=calendar) if calendar != "standard" else \
        np.datetime64("2001-11-16T00:00", "ns")
    ds = round_trip(forecast_dataset(encoded_forecast(1, 1), [init], step, [T2M], GRID, ATTRS), tmp_path, "netcdf")
    assert ds["prediction_timedelta"].values.tolist() == [1, 2, 3]
    assert ds["prediction_timedelta"].attrs["units"] == "months"
    valid = [pd.Timestamp(str(t)).strftime("%m-%d %H") for t in np.ravel(ds["valid_time"].values)]
    # the middle of December, January and February on each calendar
    expected = {"standard": ["12-16 12", "01-16 12", "02-15 00"], "noleap": ["12-16 12", "01-16 12", "02-15 00"],
                "360_day": ["12-16 00", "01-16 00", "02-16 00"]}
    assert valid == expected[calendar]


def test_forecasts_are_written_in_the_source_longitudes_and_latitude_order(tmp_path):
    # the store holds a Mediterranean grid in [-180, 180): -6, -3, 0, 3; the source listed it in [0, 360), north first
    grid = Grid(LATITUDE, np.array([354.0, 357.0, 0.0, 3.0]), latitude_descending=True)
    values = encoded_forecast(1, 1)  # [1, T, 1, 3, 4], value = 1000·t + 10·i + j
    ds = round_trip(forecast_dataset(values, CALENDAR_CASES["standard"][0][:1], TIME_STEP, [T2M], grid, ATTRS),
                    tmp_path, "netcdf")
    assert ds["longitude"].values.tolist() == [0.0, 3.0, 354.0, 357.0]
    assert ds["latitude"].values.tolist() == [30.0, 0.0, -30.0]
    # the store's column j = 2 (0°E) and row i = 2 (30°N) is the file's first column and row
    assert ds["t2m"].isel(time=0, prediction_timedelta=0, latitude=0, longitude=0).item() == 22
