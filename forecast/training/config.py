"""Typed settings of the training stage: the network, its optimisation, the batches and the Trainer.

Each class checks its own values when it is built, so a bad setting stops ``forecast train`` before any work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from forecast.data.config import require

PRECISIONS = ("auto", "32-true", "32", "64-true", "bf16-mixed", "bf16-true", "16-mixed", "16-true")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")


@dataclass
class ModelConfig:
    """Which network to train.

    Args:
        kind: convlstm, convgru, stacked_lstm, or a reference: persistence, climatology, window_mean,
            damped_persistence.
        options: the network's own options, e.g. ``{hidden: [64, 64], kernel_size: 3, patch_size: 2}``.
        static: append the store's static fields (validity, sin/cos latitude) to every input frame.
        base: what a learned network's residual is added to: ``blend``, a learned blend of the input window and
            the climatology, fitted by least squares on the training windows first; ``last``, the previous frame.
        input_norm: ``window`` shows the recurrent layers each sample's maps minus its input-window mean (robust
            to trends that leave the training range); ``none`` shows them as normalised.
        cycles: forcing channels per frame: ``auto`` (time of year below a yearly step, time of day below a
            daily one), ``none``, ``seasonal``, ``diurnal`` or ``both``.
        compile: ``torch.compile`` the recurrent cells (not the time loop, which would be unrolled); ``auto``:
            on a GPU only.
    """

    kind: str = "convlstm"
    options: dict[str, Any] = field(default_factory=dict)
    static: bool = True
    base: Literal["blend", "last"] = "blend"
    input_norm: Literal["none", "window"] = "none"
    cycles: Literal["auto", "none", "seasonal", "diurnal", "both"] = "auto"
    compile: bool | Literal["auto"] = "auto"


@dataclass
class OptimConfig:
    """Loss and optimisation: AdamW with linear warm-up, then cosine decay to ``lr * min_lr_ratio``.

    Args:
        loss: ``mse`` or ``mae``, latitude-weighted and masked, in normalised units.
        lr, weight_decay, warmup_steps, min_lr_ratio: the optimiser and its schedule.
        teacher_forcing_start, teacher_forcing_end, teacher_forcing_steps: scheduled sampling: the probability
            of feeding the true frame decays linearly over that many steps.
        tbptt_steps: input chunk length for truncated BPTT (0: whole window at once).
        grad_clip: clip the global gradient norm to this (0: no clipping).
    """

    loss: Literal["mse", "mae"] = "mse"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    min_lr_ratio: float = 0.1
    teacher_forcing_start: float = 0.0
    teacher_forcing_end: float = 0.0
    teacher_forcing_steps: int = 0
    tbptt_steps: int = 0
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        require(self.lr > 0, "optim.lr", self.lr, "positive")
        require(self.weight_decay >= 0, "optim.weight_decay", self.weight_decay, ">= 0")
        require(self.warmup_steps >= 0, "optim.warmup_steps", self.warmup_steps, ">= 0")
        require(0 <= self.min_lr_ratio <= 1, "optim.min_lr_ratio", self.min_lr_ratio, "between 0 and 1")
        for key in ("teacher_forcing_start", "teacher_forcing_end"):
            require(0 <= getattr(self, key) <= 1, f"optim.{key}", getattr(self, key), "a probability in [0, 1]")
        require(self.teacher_forcing_steps >= 0, "optim.teacher_forcing_steps", self.teacher_forcing_steps, ">= 0")
        require(self.tbptt_steps >= 0, "optim.tbptt_steps", self.tbptt_steps, ">= 0 (0: off)")
        require(self.grad_clip >= 0, "optim.grad_clip", self.grad_clip, ">= 0 (0: off)")


@dataclass
class LoaderConfig:
    """Batches.

    Args:
        batch_size: samples per batch on each device.
        num_workers: DataLoader worker processes (0 reads in the training process).
        resident: on a GPU, hold the splits' maps in its memory and cut windows there (``auto``: when they fit in
            30 % of its free memory); otherwise workers read into pinned memory.
        prefetch_factor: batches each worker keeps ready.
    """

    batch_size: int = 8
    num_workers: int = 0
    resident: bool | Literal["auto"] = "auto"
    prefetch_factor: int = 4

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, "loader.batch_size", self.batch_size, "a whole number >= 1")
        require(self.num_workers >= 0, "loader.num_workers", self.num_workers, ">= 0")
        require(self.prefetch_factor >= 1, "loader.prefetch_factor", self.prefetch_factor, "a whole number >= 1")


@dataclass
class TrainerConfig:
    """The Lightning Trainer settings an experiment changes; everything else keeps Lightning's default.

    Args:
        max_epochs, max_steps: stop after whichever comes first (max_steps -1: no step limit).
        accelerator, devices, num_nodes, strategy: where to run (``ddp`` on CPU uses gloo).
        precision: ``auto`` (``bf16-mixed`` on a GPU, ``32-true`` on a CPU), ``32-true``, ``bf16-mixed``, …
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
    precision: str = "auto"
    deterministic: bool = False
    limit_train_batches: int | float = 1.0
    limit_val_batches: int | float = 1.0
    val_check_interval: int | float = 1.0
    log_every_n_steps: int = 10
    checkpoint_every_n_steps: int = 50
    early_stopping_patience: int = 0
    ddp_timeout_s: int = 600
    enable_progress_bar: bool = True

    def __post_init__(self) -> None:
        require(self.max_epochs >= 1, "trainer.max_epochs", self.max_epochs, "a whole number >= 1")
        require(self.max_steps == -1 or self.max_steps >= 1, "trainer.max_steps", self.max_steps,
                "-1 (no limit) or a whole number >= 1")
        require(self.accelerator in ACCELERATORS, "trainer.accelerator", self.accelerator,
                f"one of {', '.join(ACCELERATORS)}")
        if self.accelerator in {"gpu", "cuda"}:
            import torch  # here, not at the top: parsing a config must not pay torch's import for every stage

            require(torch.cuda.is_available(), "trainer.accelerator", self.accelerator,
                    "'cpu' or 'auto' on this machine: it has no CUDA GPU")
        require(self.devices == "auto" or (isinstance(self.devices, int) and self.devices >= 1)
                or (isinstance(self.devices, str) and self.devices.lstrip("-").isdigit()),
                "trainer.devices", self.devices, "'auto' or a whole number >= 1")
        require(self.num_nodes >= 1, "trainer.num_nodes", self.num_nodes, "a whole number >= 1")
        require(str(self.precision) in PRECISIONS, "trainer.precision", self.precision,
                f"one of {', '.join(PRECISIONS)}")
        for key in ("limit_train_batches", "limit_val_batches", "val_check_interval"):
            require(getattr(self, key) > 0, f"trainer.{key}", getattr(self, key),
                    "positive (a fraction of an epoch, or a whole number of batches)")
        require(self.log_every_n_steps >= 1, "trainer.log_every_n_steps", self.log_every_n_steps, ">= 1")
        require(self.checkpoint_every_n_steps >= 1, "trainer.checkpoint_every_n_steps",
                self.checkpoint_every_n_steps, ">= 1")
        require(self.early_stopping_patience >= 0, "trainer.early_stopping_patience",
                self.early_stopping_patience, ">= 0 (0: off)")
        require(self.ddp_timeout_s >= 1, "trainer.ddp_timeout_s", self.ddp_timeout_s, ">= 1")
