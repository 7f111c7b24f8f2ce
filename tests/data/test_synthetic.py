"""Synthetic CF maps: files, calendars, determinism, land mask, motion, ranges and attributes."""

from __future__ import annotations

import itertools
from pathlib import Path

import cftime
import numpy as np
import pytest
import xarray as xr

from forecast.data.synthetic import VARIABLES, SyntheticSpec, iter_blocks, synthetic_dataset, write_synthetic

ALL = tuple(VARIABLES)
SMALL = SyntheticSpec(n_times=48, n_lat=8, n_lon=16, variables=ALL, land_mask=True)


def _open(paths: list[Path]) -> xr.Dataset:
    return xr.open_mfdataset(
        paths,
        combine="by_coords",
        data_vars="minimal",
        coords="minimal",
        compat="override",
        join="exact",
        use_cftime=None,
    )


def _low(values: xr.DataArray) -> float:
    return float(values.min())


def _high(values: xr.DataArray) -> float:
    return float(values.max())


def test_files_are_written_in_time_order_and_combine_into_all_steps(tmp_path: Path) -> None:
    paths = write_synthetic(tmp_path, SMALL, n_files=5)
    assert [p.name for p in paths] == [f"synthetic_{i:03d}.nc" for i in range(5)]
    assert sorted(tmp_path.iterdir()) == paths  # no temporary files left behind
    firsts = [xr.open_dataset(p).time.values[0] for p in paths]
    assert firsts == sorted(firsts)
    with _open(paths) as ds:
        assert ds.sizes == {"time": 48, "latitude": 8, "longitude": 16}
        assert set(ds.data_vars) == set(ALL)
        assert ds.indexes["time"].is_monotonic_increasing


@pytest.mark.parametrize(
    ("calendar", "cftime_type"), [("360_day", cftime.Datetime360Day), ("noleap", cftime.DatetimeNoLeap)]
)
def test_non_standard_calendars_decode_to_cftime(tmp_path: Path, calendar: str, cftime_type: type) -> None:
    spec = SyntheticSpec(n_times=8, n_lat=4, n_lon=8, freq="1D", start="2001-02-27", calendar=calendar)
    with _open(write_synthetic(tmp_path, spec, n_files=2)) as ds:
        times = ds.time.values
    assert all(isinstance(t, cftime_type) for t in times)
    assert times[0].calendar == calendar
    # 360_day has a 30 February; noleap goes from 28 February straight to 1 March.
    expected_day3 = (2, 29) if calendar == "360_day" else (3, 1)
    assert (times[2].month, times[2].day) == expected_day3


def test_standard_calendar_decodes_to_numpy_datetimes(tmp_path: Path) -> None:
    with _open(write_synthetic(tmp_path, SyntheticSpec(n_times=4, n_lat=4, n_lon=8), n_files=2)) as ds:
        assert ds.time.dtype.kind == "M"
        assert ds.time.values[1] - ds.time.values[0] == np.timedelta64(6, "h")


@pytest.mark.parametrize("compression", [True, False])
def test_streamed_files_equal_the_in_memory_dataset(tmp_path: Path, compression: bool) -> None:
    paths = write_synthetic(tmp_path, SMALL, n_files=3, compression=compression)
    with _open(paths) as written:
        xr.testing.assert_identical(written.load().drop_encoding(), synthetic_dataset(SMALL))


def test_blocks_carry_the_state_so_any_split_gives_the_same_series() -> None:
    blocks = xr.concat(list(iter_blocks(SMALL, 7)), dim="time")
    xr.testing.assert_identical(blocks, synthetic_dataset(SMALL))


def test_same_seed_gives_same_data_and_other_seed_differs() -> None:
    spec = SyntheticSpec(n_times=8, n_lat=8, n_lon=16)
    again = synthetic_dataset(SyntheticSpec(n_times=8, n_lat=8, n_lon=16))
    other = synthetic_dataset(SyntheticSpec(n_times=8, n_lat=8, n_lon=16, seed=1))
    xr.testing.assert_identical(synthetic_dataset(spec), again)
    assert not np.allclose(synthetic_dataset(spec).t2m, other.t2m)


def test_land_mask_blanks_only_sst_and_only_on_land() -> None:
    ds = synthetic_dataset(SyntheticSpec(n_times=6, n_lat=16, n_lon=32, variables=ALL, land_mask=True))
    land = ds.sst.isnull()
    assert (land == land.isel(time=0)).all()  # the same cells at every step
    assert 0.1 <= float(land.isel(time=0).mean()) <= 0.6
    assert all(int(ds[name].isnull().sum()) == 0 for name in ALL if name != "sst")
    sea = synthetic_dataset(SyntheticSpec(n_times=6, n_lat=16, n_lon=32, variables=ALL))
    assert int(sea.sst.isnull().sum()) == 0
    xr.testing.assert_identical(sea.sst.where(~land), ds.sst)  # the mask changes nothing else


def test_fields_move_between_steps() -> None:
    """The best-matching shift of the anomaly from one day to the next is mostly not zero."""
    ds = synthetic_dataset(SyntheticSpec(n_times=24, n_lat=16, n_lon=32, freq="1D", noise=0.0, variables=("t2m",)))
    anomaly = (ds.t2m - ds.t2m.mean("time")).values  # [time, lat, lon]
    shifts = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]
    moved = 0
    for now, after in itertools.pairwise(anomaly):
        score = [np.corrcoef(np.roll(now, s, axis=(0, 1))[2:-2].ravel(), after[2:-2].ravel())[0, 1] for s in shifts]
        moved += shifts[int(np.argmax(score))] != (0, 0)
    assert moved >= 0.7 * (len(anomaly) - 1)


def test_persistence_error_is_well_above_the_noise() -> None:
    ds = synthetic_dataset(SyntheticSpec(n_times=24, n_lat=16, n_lon=32, freq="1D", variables=("t2m",)))
    persistence_rmse = float(np.sqrt(((ds.t2m.diff("time")) ** 2).mean()))
    noise_rmse = np.sqrt(2) * 0.02 * 10.0  # two independent draws of the t2m noise (0.02 of 10 K)
    assert persistence_rmse > 2 * noise_rmse


def test_values_are_float32_in_physical_ranges() -> None:
    ds = synthetic_dataset(SyntheticSpec(n_times=48, n_lat=16, n_lon=32, variables=ALL, land_mask=True))
    assert all(ds[name].dtype == np.float32 for name in ALL)
    assert 200 < _low(ds.t2m) <= _high(ds.t2m) < 330
    assert 0 == _low(ds.tp) < _high(ds.tp) < 50
    assert 0.5 < float((ds.tp == 0).mean()) < 0.99  # mostly dry, but it rains somewhere
    assert 271 < _low(ds.sst) <= _high(ds.sst) < 310
    assert 4.5e4 < _low(ds.z500) <= _high(ds.z500) < 6.2e4
    assert -40 < min(_low(ds.u10), _low(ds.v10)) <= max(_high(ds.u10), _high(ds.v10)) < 40


def test_unknown_variable_is_rejected_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known ones are: t2m, tp, sst, z500, u10, v10"):
        SyntheticSpec(variables=("t2m", "humidity"))


def test_written_files_carry_cf_attributes(tmp_path: Path) -> None:
    path = write_synthetic(tmp_path, SMALL, n_files=2)[0]
    with xr.open_dataset(path, decode_times=False) as raw:
        assert raw.attrs["Conventions"] == "CF-1.8"
        assert raw.attrs["source"] == "forecast.data.synthetic"
        assert {"title", "history"} <= set(raw.attrs)
        assert raw.time.attrs["units"].startswith("hours since 2000-01-01")
        assert raw.time.attrs["calendar"] == "standard"
        assert (
            raw.latitude.attrs.items() >= {"units": "degrees_north", "standard_name": "latitude", "axis": "Y"}.items()
        )
        assert (
            raw.longitude.attrs.items() >= {"units": "degrees_east", "standard_name": "longitude", "axis": "X"}.items()
        )
        assert raw.sst.attrs["standard_name"] == "sea_surface_temperature"
        for name in ALL:
            assert {"units", "standard_name", "long_name"} <= set(raw[name].attrs)
            assert raw[name].dims == ("time", "latitude", "longitude")
            assert raw[name].dtype == np.float32
        assert (np.diff(raw.latitude.values) > 0).all()
