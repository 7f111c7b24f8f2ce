"""Short CPU trainings through ``forecast train``: the claims of Shi et al. (2015) on data they fit."""

from __future__ import annotations

from pathlib import Path

import pytest

from forecast.data.synthetic import SyntheticSpec, write_synthetic
from pipelines.cli import main as cli_main
from tests.runs import experiment, last_validation, train_in_process

STEPS = {"max_steps": 150, "val_check_interval": 50}


def train(tmp_path: Path, store: Path, name: str, model: dict, **sections) -> dict[str, float]:
    config = experiment(tmp_path, store, name=name, model=model, trainer=STEPS, **sections)
    assert train_in_process(tmp_path, config) == 0
    row = last_validation(tmp_path / "runs" / name)
    return {key.removeprefix("val/rmse_normalised").lstrip("_") or "model": float(row[key])
            for key in row.index if key.startswith("val/rmse_normalised")}


@pytest.mark.slow
def test_convlstm_beats_persistence_and_the_fc_lstm_on_advecting_fields(tmp_path, advecting_store):
    conv = train(tmp_path, advecting_store, "conv", {"kind": "convlstm", "options": {"hidden": [16, 16]}})
    fc = train(tmp_path, advecting_store, "fc", {"kind": "stacked_lstm", "options": {"hidden": 128}})
    print(f"validation RMSE after {STEPS['max_steps']} steps: ConvLSTM {conv['model']:.3f}, FC-LSTM "
          f"{fc['model']:.3f}, " + ", ".join(f"{name} {value:.3f}" for name, value in conv.items() if name != "model"))
    # Same windows and split for both runs, so the references agree exactly.
    assert conv["persistence"] == pytest.approx(fc["persistence"])
    assert conv["model"] < 0.85 * conv["persistence"]
    assert conv["model"] < conv["best_reference"]  # every reference, optical flow included
    assert conv["model"] < 0.9 * fc["model"]


@pytest.fixture(scope="module")
def seasonal_store(tmp_path_factory) -> Path:
    """40 years of monthly (30-day) maps on a 4×8 grid: a strong seasonal cycle under weather noise."""
    root = tmp_path_factory.mktemp("seasonal")
    spec = SyntheticSpec(n_times=480, n_lat=4, n_lon=8, variables=("t2m",), start="1980-01-01", freq="30D",
                         calendar="360_day", seed=5)
    write_synthetic(root / "src", spec, n_files=2)
    store = root / "store.zarr"
    assert cli_main(["prepare", "--source", str(root / "src" / "*.nc"), "--variables", "t2m", "--output",
                     str(store)]) == 0
    return store


def test_stacked_lstm_learns_a_seasonal_point_series_better_than_persistence(tmp_path, seasonal_store):
    result = train(tmp_path, seasonal_store, "point",
                   {"kind": "stacked_lstm", "static": True, "options": {"mode": "point", "hidden": 32}},
                   windows={"input_steps": 12, "output_steps": 6}, optim={"lr": 0.01, "warmup_steps": 10})
    print(f"seasonal point series: stacked LSTM {result['model']:.3f}, persistence {result['persistence']:.3f}")
    assert result["model"] < 0.7 * result["persistence"]
