"""The Dataset serves the store's windows exactly, and the DataModule's loaders work with worker processes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

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
        output=str(tmp_path / "s.zarr"),
        splits=splits,
        chunk_mb=0.002,
    )
    return open_store(prepare(cfg))


def test_samples_equal_the_store_slices(gappy_store):
    fields = xr.open_zarr(gappy_store.path, consolidated=False)["fields"].values
    dataset = WindowDataset(gappy_store, "train", input_steps=3, output_steps=2)
    assert gappy_store.chunk_steps < 5  # windows cross chunk files
    for index in range(len(dataset)):
        sample = dataset[index]
        start = sample["start"]
        np.testing.assert_array_equal(sample["x"].numpy(), fields[start : start + 3])
        np.testing.assert_array_equal(sample["y"].numpy(), fields[start + 3 : start + 5])
        assert sample["x"].shape == (3, 2, 6, 12) and sample["x"].dtype == torch.float32
        assert sample["mask"].dtype == torch.bool and sample["mask"].shape == (2, 6, 12)
        assert torch.all(torch.diff(sample["times"]) == 6.0)  # no window crosses the gap


def test_windows_skip_the_gap_and_stay_in_their_split(gappy_store):
    dataset = WindowDataset(gappy_store, "train", input_steps=3, output_steps=2)
    train = gappy_store.split_ranges["train"]
    # 20 steps before the gap → 16 windows, the rest of train after it → (train.stop - 20) - 4 windows
    assert len(dataset) == 16 + (train.stop - 20 - 4)
    assert all(train.start <= s and s + 5 <= train.stop for s in dataset.starts)


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
    starts = torch.cat([b["start"] for b in module.val_dataloader()])
    assert torch.equal(starts, torch.as_tensor(module.datasets["val"].starts))


def test_datamodule_rejects_windows_that_fit_no_split(gappy_store):
    module = ForecastDataModule(gappy_store.path, input_steps=8, output_steps=4)
    with pytest.raises(ConfigError, match="'val' split holds no window of 8\\+4 steps"):
        module.setup("fit")
