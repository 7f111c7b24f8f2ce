"""The data-wait share under a real Trainer: the loader's fetches count, validation and checkpoints do not."""

from __future__ import annotations

import time

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from forecast.training.callbacks import DataWait


class Slow(Dataset):
    """Eight samples, each taking ``seconds`` to read."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> torch.Tensor:
        time.sleep(self.seconds)
        return torch.ones(4)


class Linear(pl.LightningModule):
    def __init__(self, read_s: float, validate_s: float, step_s: float):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.read_s, self.validate_s, self.step_s = read_s, validate_s, step_s

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        time.sleep(self.step_s)
        return self.layer(batch).pow(2).mean()

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self.log("val/loss", self.layer(batch).pow(2).mean())

    def train_dataloader(self) -> DataLoader:
        return DataLoader(Slow(self.read_s), batch_size=2)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(Slow(self.validate_s), batch_size=2)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def share(read_s: float, validate_s: float, step_s: float) -> float:
    waiting = DataWait()
    trainer = pl.Trainer(accelerator="cpu", max_steps=8, val_check_interval=2, check_val_every_n_epoch=None,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, callbacks=[waiting],
                         profiler=waiting.fetches)
    trainer.fit(Linear(read_s, validate_s, step_s))
    return waiting.share


def test_the_share_is_the_loaders_fetches_against_fetches_and_steps():
    # each batch: 2 × 20 ms of reading against 20 ms of stepping → two thirds waiting
    assert 0.5 < share(read_s=0.02, validate_s=0.0, step_s=0.02) < 0.8
    # a loader that is never waited for
    assert share(read_s=0.0, validate_s=0.0, step_s=0.02) < 0.1


def test_a_slow_validation_is_not_counted_as_waiting_for_data():
    # 4 validations × 8 samples × 50 ms = 1.6 s of validation against ~0.2 s of training steps
    assert share(read_s=0.0, validate_s=0.05, step_s=0.02) < 0.1
