"""The ``LightningDataModule`` over a prepared store: one ``WindowDataset`` per split, DDP-ready loaders."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from forecast.data.calendar import NO_CYCLES, Cycles
from forecast.data.dataset import WindowDataset
from forecast.data.sampler import EpochSampler
from forecast.data.store import StoreInfo, open_store
from forecast.data.windows import SPLITS
from forecast.errors import ConfigError

log = logging.getLogger(__name__)
RESIDENT_SHARE = 0.3  # of the GPU's free memory the maps may take, leaving the rest to the model


class ForecastDataModule(pl.LightningDataModule):
    """Loaders of windows from ``store``; each DDP rank reads its own share (see ``EpochSampler``), so the
    Trainer runs with ``use_distributed_sampler=False``.

    Args:
        store: path of a store written by ``forecast prepare``.
        input_steps, output_steps, stride: the windows (see ``WindowConfig``).
        cycles: the forcing every frame comes with (time of year, time of day).
        batch_size: samples per batch on each device.
        num_workers: DataLoader worker processes (0 reads in the training process).
        seed: the training order of every epoch follows from it.
        resident: hold the splits' maps on the GPU and cut windows there: ``auto`` when they take at most
            ``RESIDENT_SHARE`` of its free memory; otherwise loaders read from the store into pinned memory.
    """

    def __init__(
        self,
        store: str | Path,
        input_steps: int,
        output_steps: int,
        stride: int = 1,
        batch_size: int = 8,
        num_workers: int = 0,
        seed: int = 0,
        cycles: Cycles = NO_CYCLES,
        resident: bool | str = "auto",
        prefetch_factor: int = 4,
    ):
        super().__init__()
        if batch_size < 1 or num_workers < 0:
            raise ConfigError(f"loader.batch_size must be >= 1 and loader.num_workers >= 0; got {batch_size} and "
                              f"{num_workers}.")
        self.store = Path(store)
        self.input_steps, self.output_steps, self.stride, self.cycles = input_steps, output_steps, stride, cycles
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.resident, self.prefetch_factor = resident, prefetch_factor
        self.on_device = False
        self.datasets: dict[str, WindowDataset] = {}
        self._info: StoreInfo | None = None

    @property
    def info(self) -> StoreInfo:
        if self._info is None:
            self._info = open_store(self.store)
        return self._info

    def setup(self, stage: str | None = None) -> None:
        for split in SPLITS:
            if split not in self.datasets:
                dataset = WindowDataset(self.info, split, self.input_steps, self.output_steps, self.stride, self.cycles)
                if len(dataset) == 0:
                    raise ConfigError(
                        f"{self.store}: the '{split}' split holds no window of "
                        f"{self.input_steps}+{self.output_steps} steps without a gap; "
                        "shorten the windows or lengthen the split."
                    )
                self.datasets[split] = dataset
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        if not self.on_device and device.type == "cuda" and self._fits(device):
            for dataset in self.datasets.values():
                dataset.make_resident(device)
            self.on_device = True
            log.info("the splits' maps (%.2f GB) are held on %s: windows are cut there, no loader copies",
                     sum(d.nbytes() for d in self.datasets.values()) / 1e9, device)

    def _fits(self, device: torch.device) -> bool:
        if self.resident is not True and self.resident != "auto":
            return False
        needed = sum(dataset.nbytes() for dataset in self.datasets.values())
        free, _ = torch.cuda.mem_get_info(device)
        return self.resident is True or needed <= RESIDENT_SHARE * free

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        workers = 0 if self.on_device else self.num_workers
        sampler = EpochSampler(len(self.datasets[split]), self.seed, shuffle,
                               resume_at=self._samples_done if shuffle and self.trainer is not None else None)
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=workers,
            # Its own generator: creating an iterator then draws no number from the global RNG, which a
            # resumed run must find exactly as the checkpoint left it.
            generator=torch.Generator().manual_seed(self.seed),
            # forkserver: workers never inherit the parent's dask/zarr threads and locks (fork can deadlock).
            multiprocessing_context="forkserver" if workers else None,
            persistent_workers=workers > 0,
            # Page-locked host batches copy to the GPU asynchronously; workers keep a few batches ready.
            pin_memory=torch.cuda.is_available() and not self.on_device,
            prefetch_factor=self.prefetch_factor if workers else None,
        )

    def _samples_done(self) -> int:
        """Windows of the current epoch this rank trained on before the checkpoint it resumed from.

        "processed", not "completed": a checkpoint written in on_train_batch_end has stepped on its
        batch before Lightning counts it completed (it catches up only after the loader starts). A
        checkpoint of an epoch's last batch resumes at the start of the next epoch.
        """
        progress = self.trainer.fit_loop.epoch_loop.batch_progress
        return 0 if progress.is_last_batch else progress.current.processed * self.batch_size

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)
