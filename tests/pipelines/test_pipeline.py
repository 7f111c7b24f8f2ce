"""The stages end to end through ``forecast``: train once, then evaluate and predict as a user and cron would."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import forecast
from forecast.data.reader import FieldsReader
from forecast.data.synthetic import SyntheticSpec, write_synthetic
from forecast.data.windows import window_inits
from tests.pipelines.conftest import NAME, Trained, file_name, iso
from tests.runs import experiment, subprocess_env

INPUT_STEPS, OUTPUT_STEPS = 4, 4  # the defaults of tests.runs.experiment
STEP = pd.Timedelta("6h")
FORECAST_DIMS = ("time", "prediction_timedelta", "latitude", "longitude")
# The store's own spec (tests/conftest.py) except where new files must differ.
STORE_SPEC = {"n_lat": 16, "n_lon": 32, "variables": ("t2m", "tp"), "seed": 3}


def forecasts(folder: Path) -> list[str]:
    """Names of finished forecast files; temporaries are hidden (leading dot) and never match."""
    return sorted(path.name for path in folder.glob(f"{NAME}_*.nc"))


def summary(out: str) -> str:
    [line] = [line for line in out.splitlines() if line.startswith("Forecasts ")]
    return line


def identity(path: Path) -> tuple[int, int]:
    """Inode and mtime: a rename-into-place gives a new inode even within the clock's resolution."""
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


def assert_complete(path: Path, trained: Trained) -> None:
    """Every lead and grid point of a forecast file is there and finite wherever the store has data."""
    with xr.open_dataset(path, decode_timedelta=True) as ds:
        assert dict(ds.sizes) == {"time": 1, "prediction_timedelta": OUTPUT_STEPS, "latitude": 16, "longitude": 32}
        for c, channel in enumerate(trained.info.channel_names):
            values = ds[channel].values
            assert np.isfinite(values[..., trained.info.mask[c]]).all(), f"{path.name}: {channel} has holes"


def assert_one_error_line(result, code: int, *fragments: str) -> None:
    assert result.code == code, (result.code, result.err)
    [line] = result.err.strip().splitlines()  # no traceback, no second line: what cron mails is this one line
    assert line.startswith("error:"), line
    for fragment in fragments:
        assert fragment in line, line


REFERENCES = ("persistence", "climatology", "window_mean", "damped_persistence", "optical_flow")


def test_evaluate_scores_the_model_and_every_reference_in_physical_units(workdir, trained, run_cli):
    result = run_cli("evaluate", "--config", trained.config)
    assert result.code == 0, result.err
    for name in ("model", *REFERENCES, "best_reference"):
        assert name in result.out
    folder = workdir / "runs" / NAME / "evaluation" / "test"
    for name in ("scores.csv", "scores.nc", "rmse_by_lead.png", "table.txt"):
        assert (folder / name).is_file(), name
    assert list(folder.glob("maps_*.png"))

    scores = pd.read_csv(folder / "scores.csv")
    keys = set(zip(scores["forecast"], scores["channel"], scores["lead"], strict=True))
    expected = {(f, c, lead) for f in ("model", *REFERENCES) for c in ("t2m", "tp")
                for lead in range(1, OUTPUT_STEPS + 1)}
    assert keys == expected
    assert len(scores) == len(expected)
    assert (scores["lead_time"] == 6 * scores["lead"]).all()  # hours
    assert np.isfinite(scores[["rmse", "mae", "bias"]].to_numpy()).all()

    # Persistence at lead 1 recomputed from the raw store: a wrong unit or weight would show here.
    info = trained.info
    fields = FieldsReader(info.path).read(0, info.times.size).astype(np.float64)
    physical = fields * info.std[None, :, None, None] + info.mean[None, :, None, None]
    inits = window_inits(info.segment, INPUT_STEPS, OUTPUT_STEPS, info.split_ranges["test"])
    error = physical[inits + 1] - physical[inits]  # [N, C, H, W]
    weights = np.broadcast_to(info.lat_weights[None, None, :, None] * info.mask[None], error.shape)
    rmse = np.sqrt((error**2 * weights).sum(axis=(0, 2, 3)) / weights.sum(axis=(0, 2, 3)))
    persistence = scores[(scores["forecast"] == "persistence") & (scores["lead"] == 1)].set_index("channel")["rmse"]
    for c, channel in enumerate(info.channel_names):
        assert persistence[channel] == pytest.approx(rmse[c], rel=1e-4), channel


def test_predict_latest_writes_a_cf_forecast_in_physical_units(workdir, trained, run_cli):
    result = run_cli("predict", "--config", trained.config)
    assert result.code == 0, result.err
    last = trained.times[-1]
    folder = workdir / "forecasts" / NAME
    assert forecasts(folder) == [file_name(last)]
    with xr.open_zarr(trained.store, consolidated=False) as store:
        units, standard_names = store["units"].values, store["standard_name"].values
    with xr.open_dataset(folder / file_name(last), decode_timedelta=True) as ds:
        assert ds["time"].values.tolist() == [last.value]
        assert ds["time"].attrs["standard_name"] == "forecast_reference_time"
        assert ds["prediction_timedelta"].attrs["standard_name"] == "forecast_period"
        leads = pd.to_timedelta(ds["prediction_timedelta"].values)
        assert list(leads) == [k * STEP for k in range(1, OUTPUT_STEPS + 1)]
        expected_valid = ds["time"].values[:, None] + ds["prediction_timedelta"].values[None, :]
        np.testing.assert_array_equal(ds["valid_time"].values, expected_valid)
        np.testing.assert_allclose(ds["latitude"].values, trained.info.latitude)
        np.testing.assert_allclose(ds["longitude"].values, trained.info.longitude)
        for c, channel in enumerate(trained.info.channel_names):
            assert ds[channel].dims == FORECAST_DIMS
            assert ds[channel].attrs["units"] == str(units[c])
            assert ds[channel].attrs["standard_name"] == str(standard_names[c])
        t2m = ds["t2m"].values
        assert np.isfinite(t2m).all()
        assert t2m.min() > 250 and t2m.max() < 320  # kelvin, not normalised units
        assert np.isfinite(ds["tp"].values).all()
        attrs = ds.attrs
    assert attrs["Conventions"] == "CF-1.8"
    assert attrs["model"] == str(Path("runs") / NAME / "model")
    assert attrs["input_data_checksum"] == trained.info.content_hash
    assert attrs["forecast_version"] == forecast.__version__
    assert datetime.fromisoformat(attrs["created"]).tzinfo is not None


def test_predict_again_skips_the_file_and_overwrite_rewrites_it(workdir, trained, run_cli):
    init = trained.times[500]
    path = workdir / "forecasts" / NAME / file_name(init)
    args = ("predict", "--config", trained.config, "--init-time", iso(init))
    first = run_cli(*args)
    assert first.code == 0, first.err
    assert "1 written, 0 already there" in summary(first.out)
    before = identity(path)

    again = run_cli(*args)
    assert again.code == 0, again.err
    assert "0 written, 1 already there" in summary(again.out)
    assert identity(path) == before

    redo = run_cli(*args, "--overwrite")
    assert redo.code == 0, redo.err
    assert "1 written, 0 already there" in summary(redo.out)
    assert identity(path)[0] != before[0]
    assert_complete(path, trained)


def test_latest_catches_up_every_init_time_after_the_newest_file(workdir, trained, run_cli):
    early = len(trained.times) - 12
    folder = workdir / "forecasts" / NAME
    assert run_cli("predict", "--config", trained.config, "--init-time", iso(trained.times[early])).code == 0
    assert forecasts(folder) == [file_name(trained.times[early])]

    result = run_cli("predict", "--config", trained.config, "--init-time", "latest")
    assert result.code == 0, result.err
    # The store has no gap, so every step after the early one can start a forecast.
    assert forecasts(folder) == [file_name(t) for t in trained.times[early:]]
    assert f"{len(trained.times) - early - 1} written, 0 already there" in summary(result.out)

    again = run_cli("predict", "--config", trained.config, "--init-time", "latest")
    assert "0 written, 1 already there" in summary(again.out)


def test_range_writes_one_file_per_init_time_and_one_zarr_store(workdir, trained, run_cli):
    inits = trained.times[-8:-2]
    result = run_cli("predict", "--config", trained.config, "--init-time", f"{iso(inits[0])}/{iso(inits[-1])}")
    assert result.code == 0, result.err
    folder = workdir / "forecasts" / NAME
    assert forecasts(folder) == [file_name(t) for t in inits]
    store = folder / f"{file_name(inits[0]).removesuffix('.nc')}_to_{inits[-1]:%Y%m%dT%H%M}.zarr"
    assert sorted(p.name for p in folder.glob("*.zarr")) == [store.name]

    with xr.open_zarr(store) as ds:
        assert set(ds.dims) == set(FORECAST_DIMS)
        np.testing.assert_array_equal(ds["time"].values, inits.values)
        # The store holds the same numbers as the files it gathers.
        with xr.open_dataset(folder / file_name(inits[2]), decode_timedelta=True) as one:
            for channel in trained.info.channel_names:
                np.testing.assert_array_equal(ds[channel].sel(time=inits[2]).values, one[channel].values[0])


def kill_after_first_forecast(command: list[str], cwd: Path, folder: Path) -> None:
    """Start ``command`` and SIGKILL it once a forecast is finished and, likely, the next one half-written."""
    log = cwd / "predict.log"  # a file, not a pipe nobody reads while polling: a full pipe would stall predict
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, cwd=cwd, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline, first_seen = time.monotonic() + 240, None
        while time.monotonic() < deadline and process.poll() is None:
            if first_seen is None and forecasts(folder):
                first_seen = time.monotonic()
            # Waiting for a temporary makes the kill land mid-write, the case that must not leave a partial file.
            if first_seen is not None and (list(folder.glob(".*tmp*")) or time.monotonic() - first_seen > 2):
                process.send_signal(signal.SIGKILL)
                process.wait()
                return
            time.sleep(0.002)
        raise AssertionError(f"predict ended (exit {process.poll()}) before it could be killed: "
                             f"{log.read_text()[-2000:]}")
    finally:
        process.kill()
        process.wait()


def test_sigkill_mid_range_leaves_no_partial_file_and_a_rerun_completes_it(workdir, trained, run_cli):
    inits = trained.times[-60:]
    span = f"{iso(inits[0])}/{iso(inits[-1])}"
    folder = workdir / "forecasts" / NAME
    command = [sys.executable, "-m", "pipelines.cli", "predict", "--config", str(trained.config), "--init-time", span]
    kill_after_first_forecast(command, workdir, folder)

    done = forecasts(folder)
    assert 1 <= len(done) < len(inits)
    for name in done:
        assert_complete(folder / name, trained)
    assert not list(folder.glob("*.zarr"))  # the store comes after the last file
    # A killed process cannot delete its temporary; what it leaves must be hidden and never look like a forecast.
    leftovers = sorted(p.name for p in folder.iterdir() if p.name.startswith("."))
    pattern = re.compile(rf"\.{NAME}_\d{{8}}T\d{{4}}\.nc\.tmp-\d+")
    assert all(pattern.fullmatch(name) for name in leftovers), leftovers
    kept = {name: identity(folder / name) for name in done}

    result = run_cli("predict", "--config", trained.config, "--init-time", span)
    assert result.code == 0, result.err
    assert f"{len(inits) - len(done)} written, {len(done)} already there" in summary(result.out)
    assert forecasts(folder) == [file_name(t) for t in inits]
    assert {name: identity(folder / name) for name in done} == kept  # nothing redone, nothing removed
    for name in forecasts(folder):
        assert_complete(folder / name, trained)
    # Writing a forecast again removes what a killed writer of that file left behind.
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]
    [store] = folder.glob("*.zarr")
    with xr.open_zarr(store) as ds:
        np.testing.assert_array_equal(ds["time"].values, inits.values)


def test_predict_from_new_raw_files_on_the_training_grid(workdir, trained, run_cli):
    spec = SyntheticSpec(n_times=12, start="2000-06-01", **{**STORE_SPEC, "seed": 4})
    write_synthetic(workdir / "new", spec, n_files=2)
    source = str(workdir / "new" / "*.nc")
    result = run_cli("predict", "--config", trained.config, "--source", source, "--output", "out")
    assert result.code == 0, result.err
    last = pd.Timestamp("2000-06-01") + (spec.n_times - 1) * STEP
    assert forecasts(workdir / "out") == [file_name(last)]
    with xr.open_dataset(workdir / "out" / file_name(last), decode_timedelta=True) as ds:
        assert ds.attrs["input_data"] == source
        assert ds.attrs["input_data_checksum"] != trained.info.content_hash
        assert ds.attrs["training_data_checksum"] == trained.info.content_hash
        assert ds["time"].values.tolist() == [last.value]
        assert float(ds["t2m"].min()) > 250 and float(ds["t2m"].max()) < 320
    assert_complete(workdir / "out" / file_name(last), trained)


def raw_files(folder: Path, **changes) -> str:
    """A glob of new raw files like the store's, starting after it, with ``changes`` to the spec."""
    spec = SyntheticSpec(n_times=8, start="2000-06-01", **{**STORE_SPEC, "seed": 4, **changes})
    write_synthetic(folder, spec, n_files=1)
    return str(folder / "*.nc")


BAD_INPUTS = {
    "unknown model path": (lambda t, d: ["--model", str(d / "no_such_model")], 5, ["no_such_model", "does not exist"]),
    "init time without enough history": (lambda t, d: ["--init-time", iso(t.times[1])], 3, ["needs 4 input maps"]),
    "init time before the data": (lambda t, d: ["--init-time", "1999-01-01T00:00"], 3, ["not a time of the input"]),
    "init time between two steps": (lambda t, d: ["--init-time", "2000-01-05T03:00"], 3, ["not a time of the input"]),
    "raw files on another grid": (lambda t, d: ["--source", raw_files(d / "coarse", n_lat=8, n_lon=16)], 5,
                                  ["8×16", "16×32"]),
    "raw files missing a variable": (lambda t, d: ["--source", raw_files(d / "t2m_only", variables=("t2m",))], 3,
                                     ["'tp' not found"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_predict_inputs_end_in_one_error_line(workdir, trained, run_cli, case):
    make_args, code, fragments = BAD_INPUTS[case]
    result = run_cli("predict", "--config", trained.config, *make_args(trained, workdir))
    assert_one_error_line(result, code, *fragments)
    assert not (workdir / "forecasts").exists()


def test_unknown_registered_model_ends_in_one_error_line(workdir, trained, advecting_store, run_cli):
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    config = experiment(workdir / "tracked", advecting_store, name=NAME, tracking={"enabled": True, "uri": uri})
    result = run_cli("predict", "--config", config, "--model", "models:/unknown@champion")
    assert_one_error_line(result, 5, "models:/unknown@champion")
    assert not (workdir / "forecasts").exists()


def test_raw_files_at_another_time_step_are_refused(workdir, trained, run_cli):
    # 12-hourly files fed to a 6-hourly model would give forecasts labelled 6 h apart: silently wrong.
    source = raw_files(workdir / "twelve_hourly", freq="12h")
    result = run_cli("predict", "--config", trained.config, "--source", source, "--output", "out")
    assert_one_error_line(result, 3, "time step 12h")


def test_scores_nc_follows_the_weatherbench2_result_layout_with_cf_attributes(workdir, trained, run_cli):
    assert run_cli("evaluate", "--config", trained.config, "--evaluate.thresholds", "{tp: [0.5]}").code == 0
    with xr.open_dataset(workdir / "runs" / NAME / "evaluation" / "test" / "scores.nc", decode_timedelta=True) as ds:
        assert ds.attrs["Conventions"] == "CF-1.8"
        assert ds["t2m"].dims == ("forecast", "metric", "region", "lead_time")
        assert list(ds["metric"].values) == ["rmse", "mae", "bias", "acc"]
        assert list(ds["forecast"].values) == ["model", *REFERENCES]
        assert ds["t2m"].attrs["units"] == "K" and ds["tp"].attrs["units"] == "kg m-2"
        assert ds["lead_time"].attrs["standard_name"] == "forecast_period"
        assert list(pd.to_timedelta(ds["lead_time"].values)) == [k * STEP for k in range(1, OUTPUT_STEPS + 1)]
        assert ds["csi"].dims == ("forecast", "threshold", "lead_time") and ds["threshold_channel"].item() == "tp"
        rmse = ds["t2m"].sel(metric="rmse", forecast="model", region="domain").values
        assert np.isfinite(rmse).all() and (rmse > 0).all()
