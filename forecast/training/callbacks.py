"""Training callbacks and checkpoint I/O that make a killed run resume exactly where it stopped."""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.profilers import PassThroughProfiler

from forecast.atomic import write_then_rename

log = logging.getLogger(__name__)


class RandomState(pl.Callback):
    """Save the random generators' states with every checkpoint and restore them on resume.

    Lightning restores weights, optimiser and loop positions but not the generators, so a resumed
    run would draw other scheduled-sampling coins than the uninterrupted one and drift from it.

    Everything is stored as tensors, ints and tuples, so checkpoints load with ``weights_only=True``.
    """

    def state_dict(self) -> dict[str, Any]:
        algorithm, keys, position, has_gauss, cached = np.random.get_state()
        state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate(),
                                 "numpy": (algorithm, torch.from_numpy(keys.astype(np.int64)), position, has_gauss,
                                           cached)}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        algorithm, keys, position, has_gauss, cached = state_dict["numpy"]
        np.random.set_state((algorithm, keys.numpy().astype(np.uint32), position, has_gauss, cached))
        random.setstate(state_dict["python"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file and rename it into place: a kill during the write
    leaves the previous ``last.ckpt`` intact instead of a truncated one."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        write_then_rename(Path(path), lambda tmp: super(AtomicCheckpointIO, self).save_checkpoint(
            checkpoint, tmp, storage_options))


class SlurmRequeue(pl.Callback):
    """SLURM warns a job with a signal before its time limit (``#SBATCH --signal=USR1@120``). Then: save
    ``last_path`` once the current step is done, requeue the job (``scontrol requeue``) and stop without packaging.
    The requeued job runs the same ``forecast train … --ckpt_path last`` and continues from that checkpoint, in the
    same MLflow run (runs/<name>/tracking.json).

    Lightning's own requeue (its SLURM environment's ``auto_requeue``) saves an ``hpc_ckpt`` the project's resume
    does not read; the train stage turns it off in favour of this one.
    """

    def __init__(self, last_path: Path, signum: int = signal.SIGUSR1):
        self.last_path, self.signum = last_path, signum
        self.asked = self.requeued = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if os.environ.get("SLURM_JOB_ID") and threading.current_thread() is threading.main_thread():
            signal.signal(self.signum, self._ask)

    def _ask(self, signum: int, frame: object) -> None:
        self.asked = True

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if not self.asked or self.requeued:
            return
        trainer.save_checkpoint(self.last_path)  # every rank takes part; rank zero writes
        self.requeued = True
        trainer.should_stop = True
        for logger in trainer.loggers:  # the run goes on after the requeue: it must not be closed now
            if hasattr(logger, "keep_open"):
                logger.keep_open = True
        if trainer.is_global_zero:
            job = os.environ["SLURM_JOB_ID"]
            result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, check=False)
            if result.returncode:
                log.warning("scontrol requeue %s failed (%s): resume by hand with --ckpt_path last.", job,
                            result.stderr.strip()[:200])


class FetchTimer(PassThroughProfiler):
    """The time the training loop spends in its loader's ``next()``: Lightning reports each fetch to the
    trainer's profiler, and this one keeps only that action's total."""

    ACTION = "train_dataloader_next"

    def __init__(self) -> None:
        super().__init__()
        self.seconds = 0.0
        self._since: float | None = None

    def start(self, action_name: str) -> None:
        if action_name.endswith(self.ACTION):
            self._since = time.perf_counter()

    def stop(self, action_name: str) -> None:
        if action_name.endswith(self.ACTION) and self._since is not None:
            self.seconds += time.perf_counter() - self._since
            self._since = None


class DataWait(pl.Callback):
    """How much of training is spent waiting for batches: the loader's fetches (``fetches``, the trainer's
    profiler) against fetches plus steps. Validation and checkpoint writes count as neither. Logged as
    ``train/data_wait_share``.

    On a GPU the step's end is synchronised first, or its asynchronous kernels would be waited for in the
    next fetch instead."""

    def __init__(self) -> None:
        self.fetches = FetchTimer()
        self.stepping = 0.0
        self._started = 0.0

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self._started = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        self.stepping += time.perf_counter() - self._started
        if trainer.global_step % trainer.log_every_n_steps == 0:
            pl_module.log("train/data_wait_share", self.share, batch_size=1)

    @property
    def share(self) -> float:
        """Share of the training time spent waiting for batches."""
        waiting = self.fetches.seconds
        return waiting / max(waiting + self.stepping, 1e-12)
