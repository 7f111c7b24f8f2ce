"""One tiny ConvLSTM trained once per module on the advecting store; each test works on its own copy of runs/."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from forecast.data.store import StoreInfo, open_store
from tests.runs import experiment, train_in_process

NAME = "tiny"
# Enough steps to write a model package; skill is not what these tests are about.
MODEL = {"kind": "convlstm", "options": {"hidden": [8]}}
TRAINER = {"max_steps": 20, "val_check_interval": 10, "limit_val_batches": 2}


@dataclass(frozen=True)
class Trained:
    folder: Path  # holds runs/<NAME>/model and the experiment file
    config: Path
    store: Path
    info: StoreInfo

    @property
    def times(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.info.times)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, advecting_store) -> Trained:
    folder = tmp_path_factory.mktemp("trained")
    config = experiment(folder, advecting_store, name=NAME, model=MODEL, trainer=TRAINER)
    assert train_in_process(folder, config) == 0
    assert (folder / "runs" / NAME / "model").is_dir()
    return Trained(folder, config, advecting_store, open_store(advecting_store))


@pytest.fixture
def workdir(tmp_path, monkeypatch, trained) -> Path:
    """``tmp_path`` as the working folder, with a copy of the trained runs/ so that writes stay in this test."""
    shutil.copytree(trained.folder / "runs", tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def iso(time) -> str:
    """The form a user types on the command line."""
    return pd.Timestamp(time).strftime("%Y-%m-%dT%H:%M")


def file_name(time) -> str:
    """The forecast file name of an init time, spelt out here rather than taken from the library."""
    return f"{NAME}_{pd.Timestamp(time).strftime('%Y%m%dT%H%M')}.nc"
