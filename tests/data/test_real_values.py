"""Real archives, real quirks: monthly and yearly means on every calendar, files in mixed units, undeclared fill
values, missing maps, short monthly series and regional grids across 0° and the dateline."""

from __future__ import annotations

import itertools
import logging
import re

import cftime
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from forecast.data.config import DataConfig, WindowConfig
from forecast.data.prepare import prepare
from forecast.data.store import open_store
from forecast.data.windows import window_inits
from tests.data.test_prepare_rejects import assert_rejected

LAT = np.array([40.0, 45.0])  # a tiny grid: 2 × 3
LON = np.array([10.0, 15.0, 20.0])
SUMMARY_LINE = re.compile(r"^\s+(train|val|test)\s+.*: (\d+) steps, (\d+) windows of (\d+)\+(\d+)$", re.M)


# ---------------------------------------------------------------------------------------------- helpers


def month_starts(calendar: str, count: int, year: int = 1959) -> list[cftime.datetime]:
    """The first instants of ``count + 1`` consecutive months (the last one closes the series)."""
    return [cftime.datetime(year + (m // 12), m % 12 + 1, 1, calendar=calendar) for m in range(count + 1)]


def monthly_stamps(calendar: str, count: int, anchor: str, year: int = 1959) -> list:
    """Monthly means stamped as archives do: month start, mid-month (CMIP Amon: 1959-01-16T12, 1959-02-15T00)
    or last day of the month; numpy datetimes on the standard calendar, cftime objects otherwise."""
    starts = month_starts("proleptic_gregorian" if calendar == "standard" else calendar, count, year)
    if anchor == "start":
        stamps = starts[:-1]
    elif anchor == "middle":
        stamps = [a + (b - a) / 2 for a, b in itertools.pairwise(starts)]
    else:
        stamps = [b - pd.Timedelta(days=1).to_pytimedelta() for b in starts[1:]]
    if calendar == "standard":
        return list(pd.to_datetime([s.isoformat() for s in stamps]))
    return stamps


def field(n_time: int, lat=LAT, lon=LON, base: float = 290.0, seed: int = 0) -> np.ndarray:
    """Plausible float32 maps: a seasonal cycle (period 12 steps), a spatial pattern and a little noise."""
    rng = np.random.default_rng(seed)
    season = 5.0 * np.sin(2 * np.pi * np.arange(n_time) / 12)[:, None, None]
    pattern = 0.5 * np.arange(lat.size)[None, :, None] + 0.1 * np.arange(lon.size)[None, None, :]
    noise = rng.normal(0.0, 0.3, (n_time, lat.size, lon.size))
    return (base + season + pattern + noise).astype(np.float32)


def dataset(times, values: dict[str, np.ndarray], lat=LAT, lon=LON, units: dict[str, str] | None = None
            ) -> xr.Dataset:
    units = units or {}
    data = {
        name: (("time", "lat", "lon"), v, {"units": units.get(name, "K"), "long_name": name})
        for name, v in values.items()
    }
    return xr.Dataset(data, coords={"time": times, "lat": lat, "lon": lon}, attrs={"Conventions": "CF-1.8"})


def physical(path) -> np.ndarray:
    """The store's fields back in physical units ``[time, channel, lat, lon]`` (missing values read as the mean)."""
    ds = xr.open_zarr(path, consolidated=False)
    return ds["fields"].values * ds["std"].values[None, :, None, None] + ds["mean"].values[None, :, None, None]


def normalised(path) -> np.ndarray:
    return xr.open_zarr(path, consolidated=False)["fields"].values


def run(source, output, variables=("sst",), windows: WindowConfig | None = None, **kwargs):
    config = DataConfig(source=str(source), variables=list(variables), store=str(output), **kwargs)
    path, fitted = prepare(config, windows or WindowConfig(3, 2))
    return open_store(path), fitted


def every_window(n_time: int, input_steps: int, output_steps: int, lo: int, hi: int, inside: bool,
                 breaks_after: tuple[int, ...] = ()) -> int:
    """Brute force: windows whose outputs lie in ``[lo, hi)`` (and inputs too when ``inside``) and that do not
    span a break between positions ``b`` and ``b + 1``."""
    count = 0
    for init in range(n_time):
        first, last = init - input_steps + 1, init + output_steps
        if first < 0 or last >= n_time or init + 1 < lo or last >= hi or (inside and first < lo):
            continue
        if not any(first <= b < last for b in breaks_after):
            count += 1
    return count


# ----------------------------------------------------------------------- monthly and yearly time axes


MONTHLY_CASES = [("360_day", "middle"), ("noleap", "middle"), ("standard", "start"), ("standard", "end")]


@pytest.mark.parametrize(("calendar", "anchor"), MONTHLY_CASES)
def test_monthly_means_read_as_a_regular_monthly_series(tmp_path, calendar, anchor):
    n = 48
    times = monthly_stamps(calendar, n, anchor)
    dataset(times, {"sst": field(n)}).to_netcdf(tmp_path / "monthly.nc")
    info, (input_steps, output_steps) = run(tmp_path / "monthly.nc", tmp_path / "s.zarr")
    assert str(info.time_step) == "1M"
    assert info.time_step.anchor == anchor
    assert info.gaps == [] and info.missing_maps == []
    assert (info.segment == info.segment[0]).all()
    assert info.times.size == n
    assert window_inits(info.segment, input_steps, output_steps).size == n - input_steps - output_steps + 1 == 44
    for name, split in info.split_ranges.items():
        inside = name == "train"
        expected = every_window(n, input_steps, output_steps, split.start, split.stop, inside)
        assert window_inits(info.segment, input_steps, output_steps, split, inputs_inside=inside).size == expected
    # train 38 steps (windows wholly inside), val and test 5 each (inputs may precede them)
    assert [window_inits(info.segment, 3, 2, s, inputs_inside=s.name == "train").size
            for s in info.split_ranges.values()] == [34, 4, 4]
    # the next month is placed where the series places its stamps
    following = monthly_stamps(calendar, n + 1, anchor)[-1]
    assert info.time_step.shift(info.times[-1], 1) == following


def test_mid_month_stamps_are_where_cmip_puts_them():
    assert [t.isoformat() for t in monthly_stamps("noleap", 3, "middle")] == [
        "1959-01-16T12:00:00", "1959-02-15T00:00:00", "1959-03-16T12:00:00"]
    assert [t.isoformat() for t in monthly_stamps("360_day", 2, "middle")] == [
        "1959-01-16T00:00:00", "1959-02-16T00:00:00"]
    assert [str(t.date()) for t in monthly_stamps("standard", 2, "end")] == ["1959-01-31", "1959-02-28"]


@pytest.mark.parametrize(("calendar", "anchor"), MONTHLY_CASES)
def test_a_missing_month_is_one_gap_that_no_window_crosses(tmp_path, calendar, anchor):
    n = 48
    times = monthly_stamps(calendar, n, anchor)
    del times[20]  # the 21st month is missing: positions 19 and 20 of the store are two months apart
    dataset(times, {"sst": field(n - 1)}).to_netcdf(tmp_path / "monthly.nc")
    info, (input_steps, output_steps) = run(tmp_path / "monthly.nc", tmp_path / "s.zarr")
    assert str(info.time_step) == "1M" and info.time_step.anchor == anchor
    assert len(info.gaps) == 1
    assert info.gaps[0][0].startswith("1960-08") and info.gaps[0][1].startswith("1960-10")
    assert (info.segment[:20] == info.segment[0]).all() and (info.segment[20:] == info.segment[20]).all()
    assert info.segment[19] != info.segment[20]
    inits = window_inits(info.segment, input_steps, output_steps)
    assert inits.size == every_window(n - 1, input_steps, output_steps, 0, n - 1, True, breaks_after=(19,)) == 39
    for init in inits:
        window = range(init - input_steps + 1, init + output_steps + 1)
        assert not (19 in window and 20 in window)


def test_65_years_of_yearly_files_prepare_without_a_gap_and_every_window(run_cli, tmp_path):
    years = 65
    times = monthly_stamps("standard", 12 * years, "middle")
    values = field(12 * years)
    source = tmp_path / "src"
    source.mkdir()
    for year in range(years):
        part = slice(12 * year, 12 * (year + 1))
        dataset(times[part], {"sst": values[part]}).to_netcdf(source / f"sst_{1959 + year}.nc")
    out = tmp_path / "s.zarr"
    result = run_cli("prepare", "--source", source / "*.nc", "--variables", "sst", "--output", out)
    assert result.code == 0, result.err
    info = open_store(out)
    assert info.times.size == 780 and len(info.sources) == 65
    assert str(info.time_step) == "1M" and info.time_step.anchor == "middle"
    assert info.gaps == [] and info.missing_maps == []
    assert "step 1M, mid-month stamps" in result.out and "0 gap(s)" in result.out
    rows = SUMMARY_LINE.findall(result.out)
    assert [r[0] for r in rows] == ["train", "val", "test"]
    for name, steps, windows, input_steps, output_steps in rows:
        split = info.split_ranges[name]
        counted = window_inits(info.segment, int(input_steps), int(output_steps), split, inputs_inside=name == "train")
        assert int(steps) == split.length
        assert int(windows) == counted.size == every_window(780, int(input_steps), int(output_steps), split.start,
                                                              split.stop, name == "train")
    # 624 training months hold 624 - 24 + 1 windows of 12+12; 78 months of val/test hold 78 - 12 + 1 each
    assert [int(r[2]) for r in rows] == [601, 67, 67]


def test_yearly_means_on_the_standard_calendar_step_by_one_year(tmp_path):
    n = 30
    times = pd.to_datetime([f"{1990 + k}-07-01" for k in range(n)])  # 365- and 366-day years alike
    dataset(times, {"sst": field(n)}).to_netcdf(tmp_path / "yearly.nc")
    info, _ = run(tmp_path / "yearly.nc", tmp_path / "s.zarr")
    assert str(info.time_step) == "1Y"
    assert info.gaps == [] and info.missing_maps == []
    assert (info.segment == 0).all()
    assert info.slots.kind == "none"
    assert pd.Timestamp(info.time_step.shift(info.times[-1], 1)) == pd.Timestamp("2020-07-01")


# ------------------------------------------------------------------------------------------------ units


def two_files(tmp_path, first: np.ndarray, first_units: str, second: np.ndarray, second_units: str,
              variable: str = "t2m"):
    """Twenty 6-hourly maps of one variable: the first ten in ``first_units``, the next ten in ``second_units``."""
    times = pd.date_range("2001-01-01", periods=20, freq="6h")
    directory = tmp_path / "src"
    directory.mkdir()
    dataset(times[:10], {variable: first}, units={variable: first_units}).to_netcdf(directory / "a.nc")
    dataset(times[10:], {variable: second}, units={variable: second_units}).to_netcdf(directory / "b.nc")
    return directory


@pytest.mark.parametrize("celsius", ["degC", "Celsius"])
def test_prepare_converts_celsius_to_the_first_files_kelvin(tmp_path, celsius):
    first = field(10)
    directory = two_files(tmp_path, first, "K", np.full((10, 2, 3), 15.0, np.float32), celsius)
    info, _ = run(directory / "*.nc", tmp_path / "s.zarr", variables=("t2m",), windows=WindowConfig(1, 1))
    assert info.channels[0].units == "K"
    values = physical(info.path)[:, 0]
    np.testing.assert_allclose(values[10:], 288.15, atol=1e-3)
    np.testing.assert_allclose(values[:10], first, atol=1e-3)


def test_prepare_converts_hectopascal_to_the_first_files_pascal(tmp_path):
    first = 100 * field(10, base=1013.25, seed=1)  # ±5 hPa around 1013.25 hPa, in Pa
    second = field(10, base=1013.25, seed=2)
    second[0] = 1013.25
    directory = two_files(tmp_path, first, "Pa", second, "hPa", "msl")
    info, _ = run(directory / "*.nc", tmp_path / "s.zarr", variables=("msl",), windows=WindowConfig(1, 1))
    assert info.channels[0].units == "Pa"
    values = physical(info.path)[:, 0]
    np.testing.assert_allclose(values[10], 101325.0, atol=0.05)
    np.testing.assert_allclose(values[10:], 100 * second.astype(np.float64), atol=0.05)
    np.testing.assert_allclose(values[:10], first, atol=0.05)
    assert info.missing_maps == []


def test_prepare_rejects_units_that_cannot_be_converted(run_cli, tmp_path):
    directory = two_files(tmp_path, field(10), "K", field(10), "m")
    out = tmp_path / "s.zarr"
    result = run_cli("prepare", "--source", directory / "*.nc", "--variables", "t2m", "--output", out,
                     "--windows.input_steps", "1", "--windows.output_steps", "1")
    assert result.code == 3
    assert_rejected(result, out, str(directory / "a.nc"), str(directory / "b.nc"), "'m'", "'K'")


# ------------------------------------------------------------------------------------ undeclared fills


def test_undeclared_1e30_fill_is_missing_and_never_averaged_in(tmp_path, caplog):
    times = pd.date_range("2001-01-01", periods=40, freq="6h")
    values = field(40)
    values[[3, 8, 15, 22, 37], [0, 1, 0, 1, 1], [0, 2, 1, 0, 2]] = 1e30  # no _FillValue declares them
    dataset(times, {"sst": values}).to_netcdf(tmp_path / "regridded.nc")
    assert (xr.open_dataset(tmp_path / "regridded.nc")["sst"].values == np.float32(1e30)).sum() == 5
    with caplog.at_level(logging.WARNING):
        info, _ = run(tmp_path / "regridded.nc", tmp_path / "s.zarr")
    assert "5 value(s)" in caplog.text and "undeclared fill value" in caplog.text
    assert 280 < info.mean[0] < 300 and 0.1 < info.std[0] < 20
    clean = np.delete(values[:32].ravel(), np.flatnonzero(values[:32].ravel() > 1e20))  # training: first 32
    np.testing.assert_allclose(info.mean[0], clean.astype(np.float64).mean(), rtol=1e-6)
    fields = normalised(info.path)
    assert np.abs(fields).max() < 10  # no 1e30 (nor its normalised ~1e29) in the store
    assert fields[3, 0, 0, 0] == 0.0 and fields[37, 0, 1, 2] == 0.0  # missing: filled with the mean
    assert info.mask.all()  # a point missing now and then is still a valid point
    assert info.missing_maps == []


def test_undeclared_fill_over_a_small_land_region_is_missing(tmp_path, caplog):
    times = pd.date_range("2001-01-01", periods=40, freq="6h")
    lat, lon = np.linspace(-20, 20, 5), np.arange(0, 40, 5.0)  # 40 points, 2 of them land
    values = field(40, lat, lon)
    values[:, 4, 6:8] = -999.0
    dataset(times, {"sst": values}, lat, lon).to_netcdf(tmp_path / "sst.nc")
    with caplog.at_level(logging.WARNING):
        info, _ = run(tmp_path / "sst.nc", tmp_path / "s.zarr")
    assert "80 value(s)" in caplog.text and "-999 repeated" in caplog.text
    assert 280 < info.mean[0] < 300
    land = np.zeros((5, 8), bool)
    land[4, 6:8] = True
    np.testing.assert_array_equal(info.mask[0], ~land)
    assert (normalised(info.path)[:, 0][:, land] == 0.0).all()  # missing, never -999 normalised
    assert info.missing_maps == []


def test_prepare_rejects_a_fill_value_that_dominates_a_variable(run_cli, tmp_path):
    times = pd.date_range("2001-01-01", periods=40, freq="6h")
    lat, lon = np.linspace(-20, 20, 5), np.arange(0, 40, 5.0)
    values = field(40, lat, lon)
    values[:, :3, :] = -999.0  # 60 % of the points
    dataset(times, {"sst": values}, lat, lon).to_netcdf(tmp_path / "sst.nc")
    out = tmp_path / "s.zarr"
    result = run_cli("prepare", "--source", tmp_path / "sst.nc", "--variables", "sst", "--output", out,
                     "--windows.input_steps", "2", "--windows.output_steps", "2")
    assert result.code == 3
    assert_rejected(result, out, "'sst'", "implausible", "-999 repeated", "undeclared fill value")


# -------------------------------------------------------------------------------------------- missing maps


def test_nan_maps_become_missing_maps_that_no_window_includes(tmp_path, caplog):
    times = pd.date_range("2001-01-01", periods=40, freq="6h")
    lat, lon = np.linspace(-20, 20, 5), np.arange(0, 40, 5.0)
    values = field(40, lat, lon)
    values[10] = np.nan  # the whole map
    values[20].ravel()[:32] = np.nan  # 80 % of the map
    values[25, 2, 3] = np.nan  # one point: still a map
    dataset(times, {"sst": values}, lat, lon).to_netcdf(tmp_path / "sst.nc")
    with caplog.at_level(logging.WARNING):
        info, (input_steps, output_steps) = run(tmp_path / "sst.nc", tmp_path / "s.zarr")
    assert "2 map(s) miss more than 50%" in caplog.text
    assert info.missing_maps == ["2001-01-03T12:00", "2001-01-06T00:00"]
    assert info.gaps == []  # the time axis itself is regular
    assert info.mask.all()
    assert len({info.segment[10], info.segment[20], info.segment[9], info.segment[11], info.segment[21]}) == 5
    assert info.segment[24] == info.segment[25] == info.segment[26]
    for split in info.split_ranges.values():
        for init in window_inits(info.segment, input_steps, output_steps, split, inputs_inside=split.name == "train"):
            window = set(range(init - input_steps + 1, init + output_steps + 1))
            assert not window & {10, 20}
    inits = window_inits(info.segment, input_steps, output_steps)
    assert 27 in inits  # the window over the map with one NaN point (24..29) is kept
    # runs 0..9, 11..19, 21..39 hold 10-5+1, 9-5+1 and 19-5+1 windows of 3+2
    assert inits.size == 6 + 5 + 15


def test_a_variable_entirely_nan_is_reported_before_windows_that_do_not_fit(run_cli, tmp_path):
    times = pd.date_range("2001-01-01", periods=40, freq="6h")
    dataset(times, {"t2m": field(40), "tp": np.full((40, 2, 3), np.nan, np.float32)}).to_netcdf(tmp_path / "nan.nc")
    out = tmp_path / "s.zarr"
    result = run_cli("prepare", "--source", tmp_path / "nan.nc", "--variables", "t2m,tp", "--output", out,
                     "--windows.input_steps", "30", "--windows.output_steps", "30")
    assert result.code == 3
    assert_rejected(result, out, "variable 'tp' is entirely NaN")
    assert "window" not in result.err


# ------------------------------------------------------------------------------------ short monthly series


def test_the_no_config_form_prepares_five_years_of_monthly_data(run_cli, tmp_path, caplog):
    times = monthly_stamps("standard", 60, "middle", year=2015)
    dataset(times, {"sst": field(60)}).to_netcdf(tmp_path / "f.nc")
    out = tmp_path / "s.zarr"
    with caplog.at_level(logging.WARNING):
        result = run_cli("prepare", "--source", tmp_path / "f.nc", "--variables", "sst", "--output", out)
    assert result.code == 0, result.err
    assert "to fit the splits" in caplog.text
    rows = SUMMARY_LINE.findall(result.out)
    assert [r[0] for r in rows] == ["train", "val", "test"]
    assert all(int(r[2]) > 0 for r in rows), result.out
    assert [(int(r[1]), int(r[2])) for r in rows] == [(48, 31), (6, 1), (6, 1)]  # windows of 12+6
    assert open_store(out).time_step.anchor == "middle"


# ------------------------------------------------------------------------------------------- longitudes


def by_longitude(lon: np.ndarray, n_time: int = 24, lat=LAT) -> np.ndarray:
    """Maps whose value at a column is that column's longitude east of Greenwich in [0, 360), + 100·t."""
    values = np.mod(lon, 360.0)[None, None, :] + 100.0 * np.arange(n_time)[:, None, None]
    return np.broadcast_to(values, (n_time, lat.size, lon.size)).astype(np.float32)


@pytest.mark.parametrize("written", ["[0, 360)", "[-180, 180)"])
def test_a_regional_grid_across_greenwich_is_whole_in_minus_180_180(tmp_path, written):
    if written == "[0, 360)":
        lon = np.concatenate([np.arange(0.0, 38.0), np.arange(354.0, 360.0)])  # 0..37 then 354..359
    else:
        lon = np.arange(-6.0, 38.0)
    times = pd.date_range("2001-01-01", periods=24, freq="6h")
    dataset(times, {"sst": by_longitude(lon)}, lon=lon).to_netcdf(tmp_path / "med.nc")
    info, _ = run(tmp_path / "med.nc", tmp_path / "s.zarr")
    np.testing.assert_array_equal(info.longitude, np.arange(-6.0, 38.0))
    assert (np.diff(info.longitude) == 1.0).all()
    assert info.longitude_convention == "[-180, 180)"
    assert info.source_longitude_convention == written
    expected_source = np.concatenate([np.arange(354.0, 360.0), np.arange(0.0, 38.0)]) if written == "[0, 360)" \
        else np.arange(-6.0, 38.0)
    np.testing.assert_array_equal(info.source_longitude, expected_source)
    assert set(info.source_longitude) == set(lon)
    assert not info.periodic
    # every column holds the data of its own longitude
    np.testing.assert_allclose(physical(info.path)[0, 0, 0], np.mod(info.longitude, 360.0), atol=1e-2)


def test_a_pacific_grid_across_the_dateline_is_whole_in_0_360(tmp_path):
    lon = np.concatenate([np.arange(-180.0, -149.0), np.arange(150.0, 180.0)])  # 150..210 in [-180, 180)
    times = pd.date_range("2001-01-01", periods=24, freq="6h")
    dataset(times, {"sst": by_longitude(lon)}, lon=lon).to_netcdf(tmp_path / "pacific.nc")
    info, _ = run(tmp_path / "pacific.nc", tmp_path / "s.zarr")
    np.testing.assert_array_equal(info.longitude, np.arange(150.0, 211.0))
    assert info.longitude_convention == "[0, 360)" and info.source_longitude_convention == "[-180, 180)"
    np.testing.assert_array_equal(info.source_longitude,
                                  np.concatenate([np.arange(150.0, 180.0), np.arange(-180.0, -149.0)]))
    assert not info.periodic
    np.testing.assert_allclose(physical(info.path)[0, 0, 1], info.longitude, atol=1e-2)


def test_a_global_grid_is_periodic(tmp_path):
    lon = np.arange(-180.0, 180.0, 30.0)
    times = pd.date_range("2001-01-01", periods=24, freq="6h")
    dataset(times, {"sst": by_longitude(lon)}, lon=lon).to_netcdf(tmp_path / "global.nc")
    info, _ = run(tmp_path / "global.nc", tmp_path / "s.zarr")
    assert info.periodic
    assert info.longitude_convention == "[0, 360)"
    np.testing.assert_array_equal(info.longitude, np.arange(0.0, 360.0, 30.0))
    np.testing.assert_allclose(physical(info.path)[0, 0, 0], info.longitude, atol=1e-2)


def test_files_in_two_longitude_conventions_join_column_by_column(tmp_path):
    east = np.arange(0.0, 360.0, 30.0)
    centred = np.arange(-180.0, 180.0, 30.0)
    times = pd.date_range("2001-01-01", periods=24, freq="6h")
    directory = tmp_path / "src"
    directory.mkdir()
    dataset(times[:12], {"sst": by_longitude(east)[:12]}, lon=east).to_netcdf(directory / "a.nc")
    # the next maps of the same grid, written from -180 to 150
    dataset(times[12:], {"sst": by_longitude(centred)[12:]}, lon=centred).to_netcdf(directory / "b.nc")
    info, _ = run(directory / "*.nc", tmp_path / "s.zarr")
    np.testing.assert_array_equal(info.longitude, east)
    np.testing.assert_allclose(physical(info.path)[:, 0], by_longitude(east), atol=1e-2)
