"""Typed settings of the training stage that are not a class signature already (network choice, Trainer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelConfig:
    """Which network to train.

    Args:
        kind: convlstm, convgru, stacked_lstm, persistence or climatology.
        options: the network's own options, e.g. ``{hidden: [64, 64], kernel_size: 3, patch_size: 2}``.
        static: append the store's static fields (validity, sin/cos latitude) to every input frame.
        compile: ``torch.compile`` the recurrent cells (not the time loop, which would be unrolled).
    """

    kind: str = "convlstm"
    options: dict[str, Any] = field(default_factory=dict)
    static: bool = True
    compile: bool = False


@dataclass
class TrainerConfig:
    """The Lightning Trainer settings an experiment changes; everything else keeps Lightning's default.

    Args:
        max_epochs, max_steps: stop after whichever comes first (-1: no step limit).
        accelerator, devices, num_nodes, strategy: where to run (``ddp`` on CPU uses gloo).
        precision: ``32-true``, ``bf16-mixed`` (GPUs) or ``16-mixed``.
        deterministic: use deterministic algorithms only (slower; same seed → same weights).
        limit_train_batches, limit_val_batches: fraction or count of batches per epoch.
        val_check_interval: validate every this fraction of an epoch, or every N training steps (an integer).
        log_every_n_steps: how often training metrics are logged.
        checkpoint_every_n_steps: how often ``last.ckpt`` is written (a killed run loses at most this).
        early_stopping_patience: validations without improvement of val/loss before stopping (0: off).
        ddp_timeout_s: how long a DDP rank waits for the others before failing.
        enable_progress_bar: Lightning's progress bar.
    """

    max_epochs: int = 10
    max_steps: int = -1
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    deterministic: bool = False
    limit_train_batches: int | float = 1.0
    limit_val_batches: int | float = 1.0
    val_check_interval: int | float = 1.0
    log_every_n_steps: int = 10
    checkpoint_every_n_steps: int = 50
    early_stopping_patience: int = 0
    ddp_timeout_s: int = 600
    enable_progress_bar: bool = True
