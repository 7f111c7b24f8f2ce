"""``ForecastModule``: one LightningModule that trains and validates any ``Forecaster`` against every reference."""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from forecast.models.base import Context, Forecaster
from forecast.models.baselines import reference_forecasts
from forecast.models.optical_flow import NAME as OPTICAL_FLOW
from forecast.models.optical_flow import optical_flow
from forecast.training.config import OptimConfig
from forecast.training.loss import LeadErrors, point_weights, weighted_error
from forecast.training.schedules import teacher_forcing_probability
from forecast.verification import Skill, unit_label

MODEL = "model"


class ForecastModule(pl.LightningModule):
    """Masked, latitude-weighted training of ``net`` in normalised units, validated against every reference.

    Optimisation is manual so that truncated BPTT can take one optimiser step per chunk of a long
    input window (Lightning 2 removed it from the Trainer): each chunk's loss is the forecast, from
    the state after the chunk, of the frames that follow it; states are detached between chunks.

    Args:
        net: any ``Forecaster``; nets without parameters (the references) are validated, never stepped.
        lat_weights: ``[H]`` cell-area weights with mean 1.
        damping: ``[T_out, C, H, W]`` damped-persistence coefficients fitted on the training period.
        channels: channel names, for metric names; ``std`` ``[C]`` and ``units`` turn normalised scores physical.
        output_steps: leads forecast per sample.
        optim: loss, optimiser, schedules, truncated BPTT and clipping.
        optical_flow: also score the optical-flow reference (``periodic``: on a global grid).
        network: how ``net`` was built, saved in checkpoints.
    """

    def __init__(self, net: Forecaster, lat_weights: Tensor, damping: Tensor, channels: list[str], std: list[float],
                 units: list[str], output_steps: int, optim: OptimConfig, optical_flow: bool = False,
                 periodic: bool = False, network: dict[str, Any] | None = None):
        super().__init__()
        # Plain values only (the optimiser settings are rebuilt from the config): checkpoints load weights_only.
        # logger=False: the run's params are the experiment's config, logged once by the train stage.
        self.save_hyperparameters(ignore=["net", "lat_weights", "damping", "optim"], logger=False)
        self.automatic_optimization = False
        self.net, self.optim = net, optim
        self.register_buffer("lat_weights", lat_weights.float())
        self.register_buffer("damping", damping.float())
        self.trainable = any(p.requires_grad for p in net.parameters())
        self._errors: dict[str, LeadErrors] = {}

    def forward(self, x: Tensor, context: Context, output_steps: int | None = None) -> Tensor:
        return self.net(x, output_steps or self.hparams.output_steps, context)

    def teacher_forcing(self) -> float:
        o = self.optim
        return teacher_forcing_probability(self.global_step, o.teacher_forcing_start, o.teacher_forcing_end,
                                           o.teacher_forcing_steps)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        x, y, context = batch["x"], batch["y"], _context(batch)
        weights = point_weights(batch["mask"], self.lat_weights)
        p_truth = self.teacher_forcing()
        chunk, steps = self.optim.tbptt_steps, x.shape[1]
        if self.trainable and chunk and chunk < steps:
            self._tbptt_chunks(x, context, weights, p_truth)
        y_hat = self.net(x, y.shape[1], context, y, p_truth)
        loss = self._step(weighted_error(y_hat, y, weights, self.optim.loss))
        if self.trainable:
            self.lr_schedulers().step()
            self.log("train/lr", self.optimizers().param_groups[0]["lr"], batch_size=x.shape[0])
        self.log("train/loss", loss, prog_bar=True, batch_size=x.shape[0])
        self.log("train/teacher_forcing", p_truth, batch_size=x.shape[0])

    def _tbptt_chunks(self, x: Tensor, context: Context, weights: Tensor, p_truth: float) -> None:
        """Truncated BPTT over the input window: one optimiser step per chunk that input frames follow, each
        forecasting those frames from the previous frame (the blend needs a whole window: it anchors only
        the final forecast)."""
        chunk, state, encoded = self.optim.tbptt_steps, None, 0
        center = self.net.center_of(x)
        seen = x if center is None else x - center[:, None]
        forcing = context.forcing if self.net.forcing_channels else None
        while encoded + chunk < x.shape[1]:
            state = self.net.encode(seen[:, encoded: encoded + chunk], state,
                                    None if forcing is None else forcing[:, encoded: encoded + chunk])
            encoded += chunk
            following = x[:, encoded: encoded + chunk]
            rollout = None if forcing is None else forcing[:, encoded - 1: encoded - 1 + following.shape[1]]
            y_hat = self.net.forecast(state, x[:, encoded - 1], following.shape[1], None, rollout, following, p_truth,
                                      center)
            self._step(weighted_error(y_hat, following, weights, self.optim.loss))
            state = self.net.detach_state(state)

    def _step(self, loss: Tensor) -> Tensor:
        """One optimiser step on ``loss`` with norm clipping; returns the detached loss."""
        if self.trainable:
            optimizer = self.optimizers()
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            if self.optim.grad_clip > 0:
                self.clip_gradients(optimizer, gradient_clip_val=self.optim.grad_clip, gradient_clip_algorithm="norm")
            optimizer.step()
        return loss.detach()

    def on_validation_epoch_start(self) -> None:
        shape = (self.hparams.output_steps, len(self.hparams.channels), self.device)
        self._errors = {name: LeadErrors(*shape) for name in (MODEL, *self.reference_names)}

    @property
    def reference_names(self) -> tuple[str, ...]:
        from forecast.models.baselines import REFERENCES

        return (*REFERENCES, OPTICAL_FLOW) if self.hparams.optical_flow else REFERENCES

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        x, y, context = batch["x"], batch["y"], _context(batch)
        weights = point_weights(batch["mask"], self.lat_weights)
        forecasts = {MODEL: self(x, context, y.shape[1]),
                     **reference_forecasts(x, context, self.damping, y.shape[1])}
        if self.hparams.optical_flow:
            forecasts[OPTICAL_FLOW] = optical_flow(x, y.shape[1], self.hparams.periodic)
        for name, y_hat in forecasts.items():
            self._errors[name].update(y_hat, y, weights)

    def on_validation_epoch_end(self) -> None:
        for errors in self._errors.values():  # sums over every rank's share, then one division
            errors.squared = self.trainer.strategy.reduce(errors.squared, reduce_op="sum")
            errors.weight = self.trainer.strategy.reduce(errors.weight, reduce_op="sum")
        model = self._errors[MODEL]
        # Every rank holds the reduced sums, so the values agree; sync_dist averages equal numbers (one cheap
        # all-reduce), which is what Lightning expects of epoch-level logs under DDP.
        self.log("val/loss", (model.squared.sum() / model.weight.sum()).float(), prog_bar=True, sync_dist=True)
        skill = self.skill()
        for key, value in skill.metrics().items():
            self.log(f"val/{key}", float(value), prog_bar=key == "rmse_normalised", sync_dist=True)
        rmse = model.rmse()  # [T, C] normalised
        for c, (channel, unit) in enumerate(zip(self.hparams.channels, self.hparams.units, strict=True)):
            physical = float(((rmse[:, c] ** 2).mean()).sqrt()) * self.hparams.std[c]
            self.log(f"val/{channel}_rmse_{unit_label(unit)}", physical, sync_dist=True)

    def skill(self) -> Skill:
        """The last validation's RMSE (normalised) of the model and of every reference."""
        return Skill.from_errors({name: (e.squared, e.weight) for name, e in self._errors.items()})

    def lead_rmse(self) -> dict[str, Tensor]:
        """The last validation's ``[T, C]`` RMSE (normalised) of the model and of each reference forecast."""
        return {name: errors.rmse() for name, errors in self._errors.items()}

    def configure_optimizers(self) -> Any:
        if not self.trainable:
            return None
        o = self.optim
        blend = set() if self.net.blend is None else set(self.net.blend.parameters())
        # No weight decay on the blend: it would pull the least-squares weights towards zero, not towards
        # any forecast.
        groups = [{"params": [p for p in self.net.parameters() if p not in blend]},
                  {"params": list(blend), "weight_decay": 0.0}]
        optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=o.lr, weight_decay=o.weight_decay)
        total = max(int(self.trainer.estimated_stepping_batches), 1)

        def factor(step: int) -> float:
            if step < o.warmup_steps:
                return (step + 1) / o.warmup_steps
            progress = min((step - o.warmup_steps) / max(total - o.warmup_steps, 1), 1.0)
            return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def _context(batch: dict[str, Tensor]) -> Context:
    return Context(batch["climatology"], batch["forcing"])
