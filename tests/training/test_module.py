"""ForecastModule under a real Trainer: clipping, truncated BPTT steps, validation references, sampler positions."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from forecast.data.datamodule import ForecastDataModule
from forecast.data.sampler import EpochSampler
from forecast.data.store import open_store
from forecast.training.build import build_module, network_spec
from forecast.training.config import ModelConfig, OptimConfig
from forecast.training.fitting import fit_references
from forecast.training.module import ForecastModule
from forecast.training.progress import ProgressLines


class GradientNorms(pl.Callback):
    """The global gradient norm each optimiser step is about to apply."""

    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))


def fit(store, steps: int, input_steps: int = 4, callbacks: tuple = (), val_check_interval: int | None = None,
        **optim) -> tuple[ForecastModule, GradientNorms, pl.Trainer]:
    spec = network_spec(ModelConfig(options={"hidden": [4]}), open_store(store))
    data = ForecastDataModule(store, input_steps, 4, batch_size=4, cycles=spec.cycles)
    data.setup()
    references = fit_references(data.datasets["train"], torch.from_numpy(data.info.lat_weights))
    module = build_module(spec, data.info, input_steps, 4, OptimConfig(**{"warmup_steps": 1, **optim}), references)
    norms = GradientNorms()
    trainer = pl.Trainer(accelerator="cpu", max_steps=steps, limit_val_batches=2, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[norms, *callbacks], use_distributed_sampler=False, num_sanity_val_steps=0,
                         val_check_interval=val_check_interval,
                         check_val_every_n_epoch=None if val_check_interval else 1)
    trainer.fit(module, datamodule=data)
    return module, norms, trainer


def test_gradient_clipping_bounds_the_global_norm_of_every_step(advecting_store):
    _, unclipped, _ = fit(advecting_store, 3, grad_clip=0.0)
    _, clipped, _ = fit(advecting_store, 3, grad_clip=1e-3)
    assert min(unclipped.norms) > 1e-2  # so the bound below is the clipping's doing
    assert len(clipped.norms) == 3 and max(clipped.norms) <= 1e-3 * (1 + 1e-4)


def test_truncated_bptt_takes_one_step_per_chunk(advecting_store):
    # 8 input frames in chunks of 3: chunks end at frames 3 and 6 with frames still to come, then the
    # last chunk forecasts the targets: 3 optimiser steps per batch.
    _, norms, trainer = fit(advecting_store, 6, input_steps=8, tbptt_steps=3)
    assert len(norms.norms) == 6
    assert trainer.fit_loop.epoch_loop.batch_progress.total.completed == 2


def test_validation_scores_the_model_and_every_reference(advecting_store):
    module, _, trainer = fit(advecting_store, 2)
    trainer.validate(module, datamodule=trainer.datamodule, verbose=False)
    metrics = trainer.callback_metrics
    references = ("persistence", "climatology", "window_mean", "damped_persistence", "optical_flow")
    for name in references:
        assert f"val/rmse_normalised_{name}" in metrics and f"val/skill_vs_{name}" in metrics
    headline = {"val/rmse_normalised", "val/skill_vs_best_reference", "val/t2m_rmse_K", "val/tp_rmse_kg_m-2"}
    assert headline <= set(metrics)
    rmse = module.lead_rmse()
    assert rmse["persistence"][-1].mean() > rmse["persistence"][0].mean()  # moving weather: worse with lead
    assert set(rmse) == {"model", *references} and all(r.shape == (4, 2) for r in rmse.values())
    best = min(float(metrics[f"val/rmse_normalised_{name}"]) for name in references)
    assert float(metrics["val/rmse_normalised_best_reference"]) <= best + 1e-6  # the envelope is no worse


@pytest.mark.parametrize("done", [0, 5, 12])
def test_sampler_resumes_after_the_samples_done_then_runs_whole_epochs(done):
    sampler = EpochSampler(12, seed=3, resume_at=lambda: done)
    first, second = list(sampler), list(sampler)
    fresh = EpochSampler(12, seed=3)
    assert first == list(fresh)[done:]
    assert second == list(fresh) and sorted(second) == list(range(12))
    fresh.set_epoch(1)
    assert list(fresh) != second and sorted(fresh) == list(range(12))


def test_progress_lines_report_steps_and_validations_for_a_log_file(advecting_store, capsys):
    fit(advecting_store, 4, callbacks=(ProgressLines(every_s=0),), val_check_interval=2)
    lines = capsys.readouterr().out.splitlines()
    steps = [line for line in lines if line.startswith("  step ")]
    assert steps[0].startswith("  step 1/4 (25%), epoch 0, loss ") and "steps/s, about " in steps[0]
    assert steps[-1].startswith("  step 4/4 (100%)")
    validations = [line for line in lines if line.startswith("  validation at step ")]
    assert [v.split(":")[0] for v in validations] == ["  validation at step 2", "  validation at step 4"]
    assert "rmse_normalised 0." in validations[0] and "skill_vs_best_reference " in validations[0]
