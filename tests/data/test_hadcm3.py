"""Real data: the HadCM3 A1B sample (iris-sample-data) prepared end to end through the CLI."""

from __future__ import annotations

from pathlib import Path

import cftime
import numpy as np
import pytest
import xarray as xr

from forecast.data.store import open_store

iris_sample_data = pytest.importorskip("iris_sample_data")
HADCM3 = Path(iris_sample_data.path) / "A1B_north_america.nc"


def test_hadcm3_calendar_longitudes_and_variable_survive(run_cli, tmp_path):
    out = tmp_path / "hadcm3.zarr"
    result = run_cli("prepare", "--config", "configs/hadcm3.yaml", "--source", HADCM3, "--output", out)
    assert result.code == 0, result.err
    info = open_store(out)
    assert info.channel_names == ["air_temperature"]
    assert info.shape == (240, 1, 37, 49)
    assert info.calendar == "360_day" and isinstance(info.times[0], cftime.Datetime360Day)
    assert str(info.time_step) == "1Y"  # annual means: a calendar year, on any calendar
    assert info.longitude.min() == 225.0 and info.longitude.max() == 315.0
    assert info.longitude_convention == "[0, 360)" and not info.periodic
    store = xr.open_zarr(out, consolidated=False)
    assert store["units"].values[0] == "K" and store["standard_name"].values[0] == "air_temperature"
    source = xr.open_dataset(HADCM3, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    physical = store["fields"].values[:, 0] * info.std[0] + info.mean[0]
    np.testing.assert_allclose(physical, source["air_temperature"].values, atol=1e-3)
    assert 250 < info.mean[0] < 300
    assert "Store written" in result.out and "360_day" in result.out
