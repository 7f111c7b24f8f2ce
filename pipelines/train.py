"""``forecast train``: fit a network on the prepared store; checkpoints and the model under runs/<name>/."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import yaml
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.profilers import Profiler
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.utilities import rank_zero_only

import forecast
from forecast.atomic import write_then_rename
from forecast.data.datamodule import ForecastDataModule
from forecast.data.store import StoreInfo, open_store
from forecast.data.windows import fitting_windows
from forecast.errors import ConfigError, ModelError, first_line
from forecast.redact import redact_tree, without_credentials
from forecast.tracking.config import TrackingConfig
from forecast.tracking.logger import ResilientMLFlowLogger
from forecast.tracking.registry import (
    MODEL_ARTIFACT,
)
from forecast.tracking.server import check_server, limit_requests, local_artifacts, prepare_local_store
from forecast.tracking.system import system_metrics
from forecast.training.build import build_module, network_spec
from forecast.training.callbacks import AtomicCheckpointIO, DataWait, RandomState, SlurmRequeue
from forecast.training.config import ModelConfig, TrainerConfig
from forecast.training.fitting import fit_references
from forecast.training.module import ForecastModule
from forecast.training.progress import ProgressLines, wants_lines
from pipelines.common import git_commit, run_folder
from pipelines.config import as_dict, parse
from pipelines.publish import finish

log = logging.getLogger(__name__)


def main(argv: Sequence[str]) -> int:
    _, cfg, objects = parse("train", argv)
    run_dir = run_folder(cfg.name)
    checkpoint = resolve_checkpoint(cfg.ckpt_path, run_dir)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    info = open_store(objects.data.store)
    input_steps, output_steps = fitting_windows(info.split_ranges, objects.windows.input_steps,
                                                objects.windows.output_steps)
    spec = network_spec(objects.model, info)
    trainer_config, compile_cells = fast_defaults(objects.trainer, objects.model)
    data = ForecastDataModule(info.path, input_steps, output_steps, objects.windows.stride, seed=cfg.seed,
                              batch_size=objects.loader.batch_size, num_workers=objects.loader.num_workers,
                              cycles=spec.cycles, resident=objects.loader.resident,
                              prefetch_factor=objects.loader.prefetch_factor)
    data.setup()
    fit = fit_references(data.datasets["train"], torch.from_numpy(info.lat_weights))
    module = build_module(spec, info, input_steps, output_steps, objects.optim, fit, compile_cells)
    config = redact_tree(as_dict(cfg))  # what is stored and logged: no credentials
    tracker = build_tracker(objects.tracking, cfg.name, run_dir, resumed=checkpoint is not None,
                            kind=objects.model.kind, description=config_description(config))
    started = RunStarted(config, run_dir, tracker)
    requeue, waiting = SlurmRequeue(run_dir / "checkpoints" / "last.ckpt"), DataWait()
    trainer = build_trainer(trainer_config, run_dir, tracker, extra=[started, requeue, waiting],
                            profiler=waiting.fetches)
    if tracker is not None:
        tracker.tags = {**(tracker.tags or {}), **run_tags(objects.model, info)}
        tracker.log_hyperparams({k: v for k, v in config.items() if k != "ckpt_path"})
    if not module.trainable:
        started.record()
    if module.trainable:
        with warnings.catch_warnings():
            # Mid-epoch resume is exact without a stateful loader: ForecastDataModule skips the batches the
            # restored loop says are done, and RandomState restores the generators.
            warnings.filterwarnings("ignore", message=".*dataloader is not resumable.*")
            # Checkpoints after the optimiser step are what an exact resume needs.
            warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")
            with monitored(tracker, objects.tracking, trainer):
                trainer.fit(module, datamodule=data, ckpt_path=checkpoint)
        if requeue.requeued:
            print(f"Requeued at step {trainer.global_step}: {run_dir / 'checkpoints' / 'last.ckpt'} holds it; the "
                  "requeued job continues with --ckpt_path last, in the same MLflow run.")
            return 0
        keep_best(trainer, module)
    # The scores of the weights that get packaged: the best validation's (a reference's own, untrained).
    trainer.validate(module, datamodule=data, verbose=False)
    # finish and report run on rank zero only; the other ranks get None and print nothing.
    tracked = finish(trainer, module, info, spec, input_steps, run_dir, tracker,
                     objects.tracking.registered_model or cfg.name) or {}
    report(trainer, module, run_dir, tracker, tracked, waiting.share)
    return 0


def monitored(tracker: ResilientMLFlowLogger | None, config: TrackingConfig, trainer: pl.Trainer
              ) -> contextlib.AbstractContextManager:
    """System metrics sampled into the run while it trains (rank zero only: one record per run)."""
    if tracker is None or not config.system_metrics_s or trainer.global_rank != 0:
        return contextlib.nullcontext()
    return system_metrics(tracker.run_id, tracker.store_uri, config.system_metrics_s, tracker.resumed)


def keep_best(trainer: pl.Trainer, module: ForecastModule) -> None:
    """Load the weights of the best validation into ``module``: those are packaged, not the last step's."""
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if best and Path(best).is_file():
        state = torch.load(best, map_location=module.device, weights_only=True)["state_dict"]
        module.load_state_dict(state)


def fast_defaults(config: TrainerConfig, model: ModelConfig) -> tuple[TrainerConfig, bool]:
    """``auto`` precision and compile resolved: bf16-mixed and compiled cells on a GPU, fp32 eager on a CPU."""
    gpu = config.accelerator in {"gpu", "cuda"} or (config.accelerator == "auto" and torch.cuda.is_available())
    precision = ("bf16-mixed" if gpu else "32-true") if config.precision == "auto" else config.precision
    compile_cells = gpu if model.compile == "auto" else bool(model.compile)
    if gpu:
        print(f"GPU: precision {precision}, compiled cells {'on' if compile_cells else 'off'} "
              "(--trainer.precision 32 and --model.compile false turn them off)")
    return TrainerConfig(**{**config.__dict__, "precision": precision}), compile_cells


def run_tags(model: ModelConfig, info: StoreInfo) -> dict[str, str]:
    tags = {"model_kind": model.kind, "dataset": info.path.stem, "dataset_hash": info.content_hash,
            "forecast_version": forecast.__version__}
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def build_tracker(config: TrackingConfig, name: str, run_dir: Path, resumed: bool, kind: str,
                  description: str) -> ResilientMLFlowLogger | None:
    """The MLflow logger; checks the server first so an outage stops the run before any training.

    A resumed training continues its MLflow run (runs/<name>/tracking.json remembers it). A new run is named
    ``<experiment>-<kind>-<UTC time>`` and described by the experiment config."""
    if not config.enabled:
        return None
    uri = config.resolved_uri()
    limit_requests(config.request_timeout_s)
    prepare_local_store(uri)
    online = check_server(uri, config.request_timeout_s, config.fallback_allowed())
    previous = _remembered_run(run_dir) if resumed else {}
    artifacts = local_artifacts(uri)
    experiment = config.experiment or name
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return ResilientMLFlowLogger(
        run_dir=run_dir, offline=not online, experiment_name=experiment, run_name=f"{experiment}-{kind}-{stamp}",
        tracking_uri=uri, artifact_location=artifacts.resolve().as_uri() if artifacts else None,
        run_id=previous.get("run_id") if previous.get("uri") == without_credentials(uri) else None,
        tags={"mlflow.note.content": description},
    )


def config_description(config: dict[str, Any]) -> str:
    """The run's description in the MLflow UI: what was trained on what."""
    model, data, windows = config.get("model", {}), config.get("data", {}), config.get("windows", {})
    options = ", ".join(f"{k}={v}" for k, v in (model.get("options") or {}).items())
    steps = f"{windows.get('input_steps') or 'auto'} → {windows.get('output_steps') or 'auto'} steps"
    return (f"{model.get('kind')} ({options or 'default options'}; base {model.get('base')}, inputs "
            f"{model.get('input_norm')}) on {data.get('store')}, {steps}; the whole config: config.yaml")


def _remembered_run(run_dir: Path) -> dict:
    path = run_dir / "tracking.json"
    return json.loads(path.read_text()) if path.exists() else {}


class RunStarted(pl.Callback):
    """Writes runs/<name>/config.yaml and tracking.json once training has really started (the checkpoint restored,
    the loaders built): a start that fails leaves the previous run's files as they were."""

    def __init__(self, config: dict[str, Any], run_dir: Path, tracker: ResilientMLFlowLogger | None):
        self.config, self.run_dir, self.tracker = config, run_dir, tracker

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.record()

    @rank_zero_only
    def record(self) -> None:
        text = yaml.safe_dump(self.config, sort_keys=False)
        write_then_rename(self.run_dir / "config.yaml", lambda tmp: tmp.write_text(text))
        if self.tracker is not None:
            state = {"uri": without_credentials(self.tracker.remote_uri), "run_id": self.tracker.run_id,
                     "offline": self.tracker.offline}
            write_then_rename(self.run_dir / "tracking.json", lambda tmp: tmp.write_text(json.dumps(state)))


def build_trainer(config: TrainerConfig, run_dir: Path, tracker: Logger | None = None,
                  extra: Sequence[pl.Callback] = (), profiler: Profiler | None = None) -> pl.Trainer:
    checkpoints = run_dir / "checkpoints"
    callbacks: list[pl.Callback] = [
        *extra,
        ModelCheckpoint(dirpath=checkpoints, filename="best", monitor="val/loss", mode="min", save_top_k=1,
                        enable_version_counter=False),
        ModelCheckpoint(dirpath=checkpoints, save_top_k=0, save_last=True,
                        every_n_train_steps=config.checkpoint_every_n_steps, enable_version_counter=False),
        RandomState(),
    ]
    progress_lines = config.enable_progress_bar and wants_lines()
    if progress_lines:
        callbacks.append(ProgressLines())
    if config.early_stopping_patience:
        callbacks.append(EarlyStopping(monitor="val/loss", mode="min", patience=config.early_stopping_patience))
    strategy = config.strategy
    if strategy.startswith("ddp"):
        strategy = DDPStrategy(timeout=timedelta(seconds=config.ddp_timeout_s),
                               start_method="popen" if strategy == "ddp" else strategy.removeprefix("ddp_"))
    return pl.Trainer(
        max_epochs=config.max_epochs, max_steps=config.max_steps, accelerator=config.accelerator,
        devices=config.devices, num_nodes=config.num_nodes, strategy=strategy, precision=config.precision,
        deterministic=config.deterministic, limit_train_batches=config.limit_train_batches,
        limit_val_batches=config.limit_val_batches, val_check_interval=config.val_check_interval,
        # A whole number of steps counts across epochs, so it may exceed one epoch's batches.
        check_val_every_n_epoch=None if isinstance(config.val_check_interval, int) else 1,
        log_every_n_steps=config.log_every_n_steps,
        enable_progress_bar=config.enable_progress_bar and not progress_lines,
        callbacks=callbacks, plugins=[AtomicCheckpointIO(), *slurm_environment()], use_distributed_sampler=False,
        logger=[CSVLogger(run_dir, name="logs"), *([tracker] if tracker is not None else [])],
        default_root_dir=run_dir, num_sanity_val_steps=0, profiler=profiler,
    )


def slurm_environment() -> list[SLURMEnvironment]:
    """Under SLURM, Lightning's environment without its own requeue (``SlurmRequeue`` does it, from last.ckpt)."""
    return [SLURMEnvironment(auto_requeue=False)] if "SLURM_NTASKS" in os.environ else []


def resolve_checkpoint(ckpt_path: str | None, run_dir: Path) -> str | None:
    """``last`` → the run's last checkpoint (none yet: start afresh); a path must exist."""
    if ckpt_path is None:
        return None
    if ckpt_path == "last":
        last = run_dir / "checkpoints" / "last.ckpt"
        if last.exists():
            check_checkpoint(last)
            return str(last)
        log.info("no %s yet: training starts from the beginning", last)
        return None
    if not Path(ckpt_path).is_file():
        raise ConfigError(f"--ckpt_path {ckpt_path} does not exist; give a checkpoint file or 'last'.")
    check_checkpoint(Path(ckpt_path))
    return ckpt_path


def check_checkpoint(path: Path) -> None:
    """``ModelError`` naming ``path`` unless it loads as a training checkpoint, without running any code from it."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        ok = isinstance(state, dict) and {"state_dict", "global_step"} <= set(state)
    except Exception as exc:  # truncated, garbage or a crafted pickle (refused by weights_only): all one problem
        raise ModelError(f"checkpoint {path} is not loadable ({first_line(exc, 160)}); resume from another one or "
                         "start afresh without --ckpt_path.") from exc
    if not ok:
        raise ModelError(f"checkpoint {path} is not a training checkpoint of `forecast train`.")


@rank_zero_only
def report(trainer: pl.Trainer, module: ForecastModule, run_dir: Path, tracker: ResilientMLFlowLogger | None,
           tracked: dict, data_wait: float) -> None:
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    kind = module.hparams.network["kind"]
    if module.trainable:
        print(f"Training done: {trainer.global_step} steps, {trainer.current_epoch} epochs of {kind} "
              f"({data_wait:.1%} of the time waiting for data)")
        print(f"  checkpoints  {run_dir / 'checkpoints'} (best: {Path(best).name or 'none'}, last: last.ckpt)")
    else:
        print(f"Reference {kind}: nothing to train; validated and packaged")
    print(f"  model        {tracked.get('model_path', run_dir / MODEL_ARTIFACT)} (weights, card and statistics: "
          "what evaluate and predict load)")
    skill = module.skill()
    rmse = ", ".join(f"{name} {value:.4f}" for name, value in skill.rmse.items())
    print(f"  validation RMSE (normalised units): {rmse}")
    verdict = "beats" if skill.beats_references else "does NOT beat"
    print(f"  skill vs best reference {skill.against('best_reference'):+.3f}: the model {verdict} every reference "
          f"(strongest overall: {skill.strongest})")
    if tracker is None or "run_id" not in tracked:
        return
    where = tracker.shown_uri
    if tracker.offline:
        where = f"local store {tracker.store_uri} (offline: `forecast sync-runs` copies it to {tracker.shown_uri})"
    print(f"  MLflow run   {tracked['run_id']} in experiment '{tracker.experiment_name}' at {where}")
    if "version" in tracked:
        aliases = "candidate, champion" if tracked["champion"] else "candidate"
        print(f"  model        models:/{tracked['model']}@candidate (version {tracked['version']}; aliases: {aliases})")
