"""Real and realistic files end to end: a regional grid across 0°, and small slices of both bundled real
experiments (HadCM3 A1B annual temperature, OSTIA monthly SST) through prepare, train, evaluate and predict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from tests.runs import experiment, train_in_process

iris_sample_data = pytest.importorskip("iris_sample_data")
SAMPLES = Path(iris_sample_data.path)
TINY = {"model": {"kind": "convlstm", "options": {"hidden": [4]}},
        "trainer": {"max_steps": 6, "val_check_interval": 3, "limit_val_batches": 2}}


def run_stages(folder: Path, run_cli, source: Path, variable: str, name: str, windows: dict, *prepare_args: str):
    """prepare → train → evaluate → predict in ``folder``; returns the evaluation summary and the forecast file."""
    store = folder / "store.zarr"
    result = run_cli("prepare", "--source", source, "--variables", variable, "--output", store, *prepare_args)
    assert result.code == 0, result.err
    config = experiment(folder, store, name=name, windows=windows, **TINY)
    assert train_in_process(folder, config) == 0
    evaluation = run_cli("evaluate", "--config", config)
    assert evaluation.code == 0, evaluation.err
    prediction = run_cli("predict", "--config", config)
    assert prediction.code == 0, prediction.err
    [forecast] = (folder / "forecasts" / name).glob("*.nc")
    return evaluation.out, forecast


@pytest.mark.slow
def test_a_regional_grid_across_greenwich_keeps_its_source_coordinates_in_the_forecast(tmp_path, run_cli,
                                                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    # A Mediterranean grid written in [0, 360), north first: 0..37.5 then 354..359.5 by 0.5.
    lon = np.concatenate([np.arange(0.0, 38.0, 0.5), np.arange(354.0, 360.0, 0.5)])
    lat = np.arange(45.0, 30.0, -1.0)
    times = pd.date_range("2001-01-01", periods=160, freq="6h")
    rng = np.random.default_rng(0)
    field = 290 + np.cumsum(rng.normal(size=(times.size, lat.size, lon.size)), axis=0) * 0.1
    ds = xr.Dataset({"sst": (("time", "lat", "lon"), field.astype(np.float32), {"units": "K"})},
                    coords={"time": times, "lat": lat, "lon": lon})
    ds.to_netcdf(tmp_path / "med.nc")
    out, forecast = run_stages(tmp_path, run_cli, tmp_path / "med.nc", "sst", "med", {"input_steps": 4,
                                                                                    "output_steps": 2})
    assert "-6…37.5 [-180, 180) (regional)" in run_cli("prepare", "--source", tmp_path / "med.nc", "--variables",
                                                        "sst", "--output", tmp_path / "again.zarr").out
    with xr.open_dataset(forecast, decode_timedelta=True) as written:
        np.testing.assert_array_equal(written["longitude"].values, lon)  # the source's values, in its order
        np.testing.assert_array_equal(written["latitude"].values, lat)  # north first, as the source
    assert "RMSE skill vs best_reference" in out


@pytest.mark.slow
def test_a_slice_of_ostia_monthly_sst_runs_end_to_end(tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out, forecast = run_stages(tmp_path, run_cli, SAMPLES / "ostia_monthly.nc", "surface_temperature", "ostia",
                               {"input_steps": 6, "output_steps": 3}, "--data.coarsen", "4",
                               "--train", "2006-04-01/2009-03-31", "--val", "2009-04-01/2009-12-31",
                               "--test", "2010-01-01/2010-09-30")
    assert "leads 1M–3M" in out and "note         optical_flow not scored" in out
    with xr.open_dataset(forecast, decode_timedelta=True) as written:
        assert written["prediction_timedelta"].attrs["units"] == "months"
        assert written["prediction_timedelta"].values.tolist() == [1, 2, 3]
        valid = [str(t)[:10] for t in np.ravel(written["valid_time"].values)]
        assert valid == ["2010-10-16", "2010-11-16", "2010-12-16"]  # mid-month, by calendar arithmetic
        sst = written["surface_temperature"].values
        assert np.isnan(sst).any() and np.nanmin(sst) > 290  # land masked, sea in kelvin


@pytest.mark.slow
def test_a_slice_of_hadcm3_annual_temperature_runs_end_to_end(tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out, forecast = run_stages(tmp_path, run_cli, SAMPLES / "A1B_north_america.nc", "air_temperature", "hadcm3",
                               {"input_steps": 10, "output_steps": 5}, "--data.time_range",
                               "{start: '1980-01-01', end: '2099-12-30'}", "--data.coarsen", "3")
    assert "leads 1Y–5Y" in out
    with xr.open_dataset(forecast, decode_timedelta=True, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True)
                         ) as written:
        assert written["prediction_timedelta"].attrs["units"] == "years"
        assert [t.year for t in np.ravel(written["valid_time"].values)] == [2100, 2101, 2102, 2103, 2104]
        assert written["time"].values[0].calendar == "360_day"
