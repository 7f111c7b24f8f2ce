"""Progress as plain lines, for training whose output goes to a log file (cron, SLURM, ``make > log``): a
progress bar there shows nothing until it ends."""

from __future__ import annotations

import sys
import time
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_only


def wants_lines() -> bool:
    """True when stdout is not a terminal: a bar would only be drawn at the end."""
    return not sys.stdout.isatty()


class ProgressLines(pl.Callback):
    """One line every ``every_s`` seconds of training (step, share done, loss, speed, time left) and one per
    validation (the headline score)."""

    def __init__(self, every_s: float = 30.0):
        self.every_s = every_s
        self._started = self._shown = 0.0
        self._first_step = 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = self._shown = time.monotonic()
        self._first_step = trainer.global_step  # a resumed run counts its speed from where it resumed

    @rank_zero_only
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        now = time.monotonic()
        if now - self._shown < self.every_s:
            return
        self._shown = now
        step, total = trainer.global_step, trainer.max_steps
        rate = (step - self._first_step) / max(now - self._started, 1e-9)
        done = f"step {step}/{total} ({step / total:.0%})" if total > 0 else f"step {step}"
        left = f", about {_duration((total - step) / rate)} left" if total > 0 and rate > 0 else ""
        loss = trainer.callback_metrics.get("train/loss")
        shown_loss = f", loss {float(loss):.4g}" if loss is not None else ""
        print(f"  {done}, epoch {trainer.current_epoch}{shown_loss}, {rate:.2f} steps/s{left}", flush=True)

    @rank_zero_only
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        metrics = trainer.callback_metrics
        shown = [f"{name} {float(metrics['val/' + name]):{form}}" for name, form in
                 (("rmse_normalised", ".4f"), ("skill_vs_best_reference", "+.3f")) if "val/" + name in metrics]
        print(f"  validation at step {trainer.global_step}: {', '.join(shown) or 'done'}", flush=True)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
