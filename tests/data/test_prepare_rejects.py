"""Every bad input ends as one line naming the file/variable/key, a non-zero exit, and nothing written."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import cf_dataset, write_split

SMALL_WINDOWS = ("--windows.input_steps", "2", "--windows.output_steps", "2")


def prepare_args(source, output, *extra):
    return [
        "prepare",
        "--source",
        str(source),
        "--variables",
        "t2m,tp",
        "--output",
        str(output),
        *SMALL_WINDOWS,
        *extra,
    ]


def assert_rejected(result, output, *fragments):
    assert result.code != 0
    assert result.err.startswith("error: ")
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in result.err, result.err
    assert not output.exists()
    assert not list(output.parent.glob(f".{output.name}.tmp-*"))


def test_prepare_rejects_empty_glob(run_cli, tmp_path):
    out = tmp_path / "store.zarr"
    result = run_cli(*prepare_args(tmp_path / "nothing" / "*.nc", out))
    assert_rejected(result, out, "No files match", "nothing/*.nc", "quote the glob")


def test_prepare_rejects_non_netcdf_file(run_cli, tmp_path):
    bad = tmp_path / "notes.nc"
    bad.write_text("this is not a NetCDF file\n")
    out = tmp_path / "store.zarr"
    assert_rejected(run_cli(*prepare_args(bad, out)), out, str(bad), "cannot be read as NetCDF", "re-download")


def test_prepare_rejects_truncated_file(run_cli, tmp_path, source_dir):
    victim = sorted(source_dir.glob("*.nc"))[-1]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) * 2 // 3])
    out = tmp_path / "store.zarr"
    assert_rejected(run_cli(*prepare_args(source_dir / "*.nc", out)), out, victim.name, "cannot be read")


def test_prepare_rejects_missing_variable_and_lists_what_exists(run_cli, tmp_path, source_dir):
    out = tmp_path / "store.zarr"
    result = run_cli(
        "prepare", "--source", source_dir / "*.nc", "--variables", "t2m,msl", "--output", out, *SMALL_WINDOWS
    )
    assert_rejected(result, out, "variable 'msl' not found", "it has: t2m, tp")


@pytest.mark.parametrize("missing", ["lat", "lon", "time"])
def test_prepare_rejects_missing_coordinate(run_cli, tmp_path, six_hourly, missing):
    ds = cf_dataset(six_hourly)
    ds = ds.rename({missing: "foo"})
    path = tmp_path / "odd.nc"
    ds.to_netcdf(path)
    out = tmp_path / "store.zarr"
    canonical = {"lat": "latitude", "lon": "longitude", "time": "time"}[missing]
    assert_rejected(run_cli(*prepare_args(path, out)), out, str(path), f"no {canonical} dimension", "foo")


def test_prepare_rejects_duplicate_times(run_cli, tmp_path, six_hourly):
    times = six_hourly.insert(10, six_hourly[10])
    path = tmp_path / "dup.nc"
    cf_dataset(times).to_netcdf(path)
    out = tmp_path / "store.zarr"
    assert_rejected(run_cli(*prepare_args(path, out)), out, "duplicate time 2001-01-03T12:00", "remove the repeated")


def test_prepare_rejects_decreasing_times(run_cli, tmp_path, six_hourly):
    times = six_hourly[:20].append(six_hourly[15:35].sort_values()[::-1][::-1] - pd.Timedelta("3D"))
    path = tmp_path / "back.nc"
    cf_dataset(times).to_netcdf(path)
    out = tmp_path / "store.zarr"
    assert_rejected(run_cli(*prepare_args(path, out)), out, "time goes backwards", "sort the data by time")


def test_prepare_rejects_files_on_different_grids(run_cli, tmp_path, six_hourly):
    directory = tmp_path / "src"
    write_split(cf_dataset(six_hourly[:20]), directory, 1)
    cf_dataset(six_hourly[20:], lat=np.linspace(-50, 50, 6)).to_netcdf(directory / "zz_other.nc")
    out = tmp_path / "store.zarr"
    result = run_cli(*prepare_args(directory / "*.nc", out))
    assert_rejected(result, out, "zz_other.nc", "latitude grid differs", "regrid")


def test_prepare_rejects_variable_entirely_nan(run_cli, tmp_path, six_hourly):
    ds = cf_dataset(six_hourly)
    ds["tp"][:] = np.nan
    path = tmp_path / "nan.nc"
    ds.to_netcdf(path)
    out = tmp_path / "store.zarr"
    assert_rejected(run_cli(*prepare_args(path, out)), out, "variable 'tp' is entirely NaN")


def test_prepare_rejects_split_outside_data(run_cli, tmp_path, source_dir):
    out = tmp_path / "store.zarr"
    result = run_cli(*prepare_args(source_dir / "*.nc", out, "--test", "2030-01-01/2030-12-31"))
    assert_rejected(result, out, "data.splits.test", "lies outside the data")


def test_prepare_rejects_overlapping_splits(run_cli, tmp_path, source_dir):
    out = tmp_path / "store.zarr"
    args = ["--train", "2001-01-01/2001-01-08", "--val", "2001-01-07/2001-01-09", "--test", "2001-01-10/2001-01-10"]
    result = run_cli(*prepare_args(source_dir / "*.nc", out, *args))
    assert_rejected(result, out, "splits 'train' and 'val' overlap")


def test_prepare_rejects_windows_longer_than_a_split(run_cli, tmp_path, source_dir):
    out = tmp_path / "store.zarr"
    result = run_cli(
        *prepare_args(source_dir / "*.nc", out, "--windows.input_steps", "4", "--windows.output_steps", "5")
    )
    assert_rejected(result, out, "split 'val' has 4 time steps but one window needs 5")


def test_prepare_rejects_unknown_config_key(run_cli, tmp_path, source_dir):
    config = tmp_path / "exp.yaml"
    config.write_text(f"data:\n  source: '{source_dir}/*.nc'\n  variables: [t2m]\n  coarse: 2\n")
    out = tmp_path / "store.zarr"
    result = run_cli("prepare", "--config", config, "--output", out, *SMALL_WINDOWS)
    assert_rejected(result, out, "coarse", "--help")


def test_prepare_rejects_unknown_command_line_key(run_cli, tmp_path, source_dir):
    out = tmp_path / "store.zarr"
    assert_rejected(run_cli(*prepare_args(source_dir / "*.nc", out, "--data.bogus", "1")), out, "--data.bogus")


def test_prepare_refuses_to_overwrite_without_flag(run_cli, tmp_path, source_dir):
    out = tmp_path / "store.zarr"
    assert run_cli(*prepare_args(source_dir / "*.nc", out)).code == 0
    before = (out / "zarr.json").stat().st_mtime_ns
    result = run_cli(*prepare_args(source_dir / "*.nc", out))
    assert result.code != 0 and "already exists" in result.err and "--overwrite" in result.err
    assert (out / "zarr.json").stat().st_mtime_ns == before


def test_gap_is_a_warning_and_prepare_succeeds(run_cli, tmp_path, six_hourly, caplog):
    times = six_hourly.delete([20, 21])
    path = tmp_path / "gappy.nc"
    cf_dataset(times).to_netcdf(path)
    out = tmp_path / "store.zarr"
    result = run_cli(*prepare_args(path, out))
    assert result.code == 0, result.err
    assert "1 gap(s): 2001-01-05T18:00 → 2001-01-06T12:00" in caplog.text
    assert "1 gap(s)" in result.out


def test_expected_error_prints_no_traceback_from_the_console_script(tmp_path):
    out = tmp_path / "store.zarr"
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *prepare_args(tmp_path / "none*.nc", out)],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 3
    assert proc.stderr.strip().splitlines()[-1].startswith("error: No files match")
    assert "Traceback" not in proc.stderr
