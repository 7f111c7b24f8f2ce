"""``ForecastModule``: one LightningModule that trains and validates any ``Forecaster``."""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from forecast.models.base import Forecaster
from forecast.training.loss import LeadErrors, LossKind, point_weights, weighted_error
from forecast.training.sampling import teacher_forcing_probability

REFERENCES = ("persistence", "climatology")


class ForecastModule(pl.LightningModule):
    """Masked, latitude-weighted training of ``net`` in normalised units.

    Optimisation is manual so that truncated BPTT can take one optimiser step per chunk of a long
    input window (Lightning 2 removed it from the Trainer): each chunk's loss is the forecast, from
    the state after the chunk, of the frames that follow it; states are detached between chunks.

    Args:
        net: any ``Forecaster``; nets without parameters (the baselines) are validated, never stepped.
        lat_weights: ``[H]`` cell-area weights with mean 1.
        climatology: ``[C, H, W]`` normalised climatological mean: the reference validation scores against.
        channels: channel names, for metric names.
        output_steps: leads forecast per sample.
        loss: ``mse`` or ``mae``.
        lr, weight_decay, warmup_steps, min_lr_ratio: AdamW with linear warm-up then cosine decay to
            ``lr * min_lr_ratio`` at the end of training.
        teacher_forcing_start, teacher_forcing_end, teacher_forcing_steps: scheduled sampling: the
            probability of feeding the true frame decays linearly over that many steps.
        tbptt_steps: input chunk length for truncated BPTT (0: whole window at once).
        grad_clip: clip the global gradient norm to this (0: no clipping).
        network: how ``net`` was built (kind and options), saved in checkpoints to rebuild it.
    """

    def __init__(self, net: Forecaster, lat_weights: Tensor, climatology: Tensor, channels: list[str],
                 output_steps: int, loss: LossKind = "mse", lr: float = 1e-3, weight_decay: float = 1e-4,
                 warmup_steps: int = 50, min_lr_ratio: float = 0.1, teacher_forcing_start: float = 0.0,
                 teacher_forcing_end: float = 0.0, teacher_forcing_steps: int = 0, tbptt_steps: int = 0,
                 grad_clip: float = 1.0, network: dict[str, Any] | None = None):
        super().__init__()
        self.save_hyperparameters(ignore=["net", "lat_weights", "climatology"])
        self.automatic_optimization = False
        self.net = net
        self.register_buffer("lat_weights", lat_weights.float())
        self.register_buffer("climatology", climatology.float())
        self.trainable = any(p.requires_grad for p in net.parameters())
        self._errors: dict[str, LeadErrors] = {}

    def forward(self, x: Tensor, horizon: int | None = None) -> Tensor:
        return self.net(x, horizon or self.hparams.output_steps)

    def teacher_forcing(self) -> float:
        hp = self.hparams
        return teacher_forcing_probability(self.global_step, hp.teacher_forcing_start, hp.teacher_forcing_end,
                                           hp.teacher_forcing_steps)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        x, y = batch["x"], batch["y"]
        weights = point_weights(batch["mask"], self.lat_weights)
        p_truth = self.teacher_forcing()
        chunk = self.hparams.tbptt_steps
        state, encoded = None, 0
        if self.trainable and chunk:
            while encoded + chunk < x.shape[1]:  # every chunk that input frames follow
                state = self.net.encode(x[:, encoded: encoded + chunk], state)
                encoded += chunk
                following = x[:, encoded: encoded + chunk]
                y_hat = self.net.forecast(state, x[:, encoded - 1], following.shape[1], following, p_truth)
                self._step(weighted_error(y_hat, following, weights, self.hparams.loss))
                state = self.net.detach_state(state)
        state = self.net.encode(x[:, encoded:], state)
        y_hat = self.net.forecast(state, x[:, -1], y.shape[1], y, p_truth)
        loss = self._step(weighted_error(y_hat, y, weights, self.hparams.loss))
        if self.trainable:
            self.lr_schedulers().step()
        self.log("train/loss", loss, prog_bar=True, batch_size=x.shape[0])
        self.log("train/teacher_forcing", p_truth, batch_size=x.shape[0])
        if self.trainable:
            self.log("train/lr", self.optimizers().param_groups[0]["lr"], batch_size=x.shape[0])

    def _step(self, loss: Tensor) -> Tensor:
        """One optimiser step on ``loss`` with norm clipping; returns the detached loss."""
        if self.trainable:
            optimizer = self.optimizers()
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            if self.hparams.grad_clip > 0:
                self.clip_gradients(optimizer, gradient_clip_val=self.hparams.grad_clip,
                                    gradient_clip_algorithm="norm")
            optimizer.step()
        return loss.detach()

    def on_validation_epoch_start(self) -> None:
        shape = (self.hparams.output_steps, len(self.hparams.channels), self.device)
        self._errors = {name: LeadErrors(*shape) for name in ("model", *REFERENCES)}

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        x, y = batch["x"], batch["y"]
        weights = point_weights(batch["mask"], self.lat_weights)
        forecasts = {
            "model": self(x, y.shape[1]),
            "persistence": x[:, -1:].expand_as(y),
            "climatology": self.climatology.expand_as(y),
        }
        for name, y_hat in forecasts.items():
            self._errors[name].update(y_hat, y, weights)

    def on_validation_epoch_end(self) -> None:
        for errors in self._errors.values():  # sums over every rank's share, then one division
            errors.squared = self.trainer.strategy.reduce(errors.squared, reduce_op="sum")
            errors.weight = self.trainer.strategy.reduce(errors.weight, reduce_op="sum")
        model = self._errors["model"]
        self.log("val/loss", (model.squared.sum() / model.weight.sum()).float(), prog_bar=True)
        for name, errors in self._errors.items():
            suffix = "" if name == "model" else f"_{name}"
            rmse = errors.rmse()  # [T, C]
            self.log(f"val/rmse{suffix}", (errors.squared.sum() / errors.weight.sum()).sqrt().float(),
                     prog_bar=name == "model")
            for c, channel in enumerate(self.hparams.channels):
                for lead in range(rmse.shape[0]):
                    self.log(f"val/rmse{suffix}/{channel}/lead_{lead + 1:02d}", rmse[lead, c].float())

    def lead_rmse(self) -> dict[str, Tensor]:
        """The last validation's ``[T, C]`` RMSE of the model and of each reference forecast."""
        return {name: errors.rmse() for name, errors in self._errors.items()}

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """Forecast ``[B, T_out, C, H, W]`` in normalised units."""
        return self(batch["x"])

    def configure_optimizers(self) -> Any:
        if not self.trainable:
            return None
        hp = self.hparams
        optimizer = torch.optim.AdamW(self.net.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        total = max(int(self.trainer.estimated_stepping_batches), 1)

        def factor(step: int) -> float:
            if step < hp.warmup_steps:
                return (step + 1) / hp.warmup_steps
            progress = min((step - hp.warmup_steps) / max(total - hp.warmup_steps, 1), 1.0)
            return hp.min_lr_ratio + (1 - hp.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
