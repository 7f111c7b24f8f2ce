"""Training callbacks and checkpoint I/O that make a killed run resume exactly where it stopped."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from forecast.atomic import write_then_rename


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
