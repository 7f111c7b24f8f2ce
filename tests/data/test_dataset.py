"""The Dataset serves the store's windows exactly, and the DataModule's loaders work with worker processes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from forecast.data.calendar import Cycles
from forecast.data.config import DataConfig, Period, Splits
from forecast.data.datamodule import ForecastDataModule
from forecast.data.dataset import WindowDataset
from forecast.data.prepare import prepare
from forecast.data.reader import FieldsReader
from forecast.data.store import open_store
from forecast.errors import ConfigError
from tests.conftest import cf_dataset


@pytest.fixture
def gappy_store(tmp_path):
    """60 six-hourly steps with steps 20-21 missing; tiny chunks so windows span chunk files."""
    times = pd.date_range("2001-01-01", periods=60, freq="6h").delete([20, 21])
    cf_dataset(times).to_netcdf(tmp_path / "src.nc")
    splits = Splits(
        train=Period("2001-01-01", "2001-01-10T18"),
        val=Period("2001-01-11", "2001-01-12"),
        test=Period("2001-01-13", "2001-01-15"),
    )
    cfg = DataConfig(
        source=str(tmp_path / "src.nc"),
        variables=["t2m", "tp"],
        store=str(tmp_path / "s.zarr"),
        splits=splits,
        chunk_mb=0.002,
    )
    return open_store(prepare(cfg)[0])


def test_samples_equal_the_store_slices(gappy_store):
    fields = xr.open_zarr(gappy_store.path, consolidated=False)["fields"].values
    dataset = WindowDataset(gappy_store, "train", input_steps=3, output_steps=2, cycles=Cycles(diurnal=True))
    assert FieldsReader(gappy_store.path).chunk_steps < 5  # windows cross chunk files
    hours = pd.DatetimeIndex(gappy_store.times).hour.to_numpy()
    for index in range(len(dataset)):
        sample = dataset[index]
        start = sample["init"] - 2
        np.testing.assert_array_equal(sample["x"].numpy(), fields[start : start + 3])
        np.testing.assert_array_equal(sample["y"].numpy(), fields[start + 3 : start + 5])
        assert sample["x"].shape == (3, 2, 6, 12) and sample["x"].dtype == torch.float32
        assert sample["mask"].dtype == torch.bool and sample["mask"].shape == (2, 6, 12)
        # each frame's forcing is its own time of day: consecutive 6-hourly steps, no window across the gap
        angle = 2 * np.pi * hours[start : start + 5] / 24
        np.testing.assert_allclose(sample["forcing"].numpy(), np.stack([np.sin(angle), np.cos(angle)], 1), atol=1e-6)
        assert np.all(np.diff(hours[start : start + 5]) % 24 == 6)
        slots = gappy_store.slot[start : start + 5]
        np.testing.assert_array_equal(sample["climatology"].numpy(), gappy_store.climatology[slots])


def test_windows_skip_the_gap_and_stay_in_their_split(gappy_store):
    dataset = WindowDataset(gappy_store, "train", input_steps=3, output_steps=2)
    train = gappy_store.split_ranges["train"]
    # 20 steps before the gap → 16 windows, the rest of train after it → (train.stop - 20) - 4 windows
    assert len(dataset) == 16 + (train.stop - 20 - 4)
    assert all(train.start <= i - 2 and i + 3 <= train.stop for i in dataset.inits)


def test_reader_falls_back_to_zarr_for_compressed_stores(gappy_store, tmp_path):
    ds = xr.open_zarr(gappy_store.path, consolidated=False)
    copy = tmp_path / "compressed.zarr"
    for var in ds.variables.values():
        var.encoding.clear()
    ds.to_zarr(copy, zarr_format=3, consolidated=False)  # default encoding: compressed
    reader = FieldsReader(copy)
    assert not reader.raw
    np.testing.assert_array_equal(reader.read(3, 9), FieldsReader(gappy_store.path).read(3, 9))


def test_datamodule_loaders_with_worker_processes(gappy_store):
    module = ForecastDataModule(gappy_store.path, input_steps=3, output_steps=2, batch_size=4, num_workers=2)
    module.setup("fit")
    batches = list(module.train_dataloader())
    assert sum(b["x"].shape[0] for b in batches) == len(module.datasets["train"])
    assert batches[0]["x"].shape == (4, 3, 2, 6, 12) and batches[0]["y"].shape == (4, 2, 2, 6, 12)
    inits = torch.cat([b["init"] for b in module.val_dataloader()])
    assert torch.equal(inits, torch.as_tensor(module.datasets["val"].inits))


def test_datamodule_rejects_windows_that_fit_no_split(gappy_store):
    module = ForecastDataModule(gappy_store.path, input_steps=8, output_steps=9)
    with pytest.raises(ConfigError, match="'val' split holds no window of 8\\+9 steps"):
        module.setup("fit")
