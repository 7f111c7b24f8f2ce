"""``forecast train``: fit a network on the prepared store; checkpoints (best, last) under runs/<name>/."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import lightning.pytorch as pl
import torch
import yaml
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.utilities import rank_zero_only

from forecast.atomic import write_then_rename
from forecast.data.datamodule import ForecastDataModule
from forecast.data.store import StoreInfo
from forecast.errors import ConfigError
from forecast.models import build_network
from forecast.tracking.config import TrackingConfig
from forecast.tracking.logger import ResilientMLFlowLogger
from forecast.tracking.server import check_server, limit_requests, local_artifacts
from forecast.tracking.training_run import log_finished_training, run_tags, save_model
from forecast.training.callbacks import AtomicCheckpointIO, RandomState
from forecast.training.config import ModelConfig, TrainerConfig
from forecast.training.module import ForecastModule
from pipelines.config import as_dict, build_parser, parse

log = logging.getLogger(__name__)
DESCRIPTION = """Train a network on the experiment's store (run `forecast prepare` first).
Resume after a crash or a kill: --ckpt_path last.  Several GPUs: --trainer.devices 4 --trainer.strategy ddp"""


def main(argv: Sequence[str]) -> int:
    parser = build_parser("train", DESCRIPTION)
    cfg, objects = parse(parser, argv)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    run_dir = Path("runs") / cfg.name
    checkpoint = resolve_checkpoint(cfg.ckpt_path, run_dir)
    data = ForecastDataModule(objects.data.output, objects.windows.input_steps, objects.windows.output_steps,
                              objects.windows.stride, seed=cfg.seed, **cfg.loader.as_dict())
    module = build_module(objects.model, data.info, objects.windows.output_steps, cfg.optim.as_dict())
    config = as_dict(parser, cfg)
    tracker = build_tracker(objects.tracking, cfg.name, run_dir, resumed=checkpoint is not None)
    trainer = build_trainer(objects.trainer, run_dir, tracker)
    save_config(config, run_dir)
    if tracker is not None:
        tracker.tags = {**(tracker.tags or {}), **run_tags(objects.model.kind, data.info)}
        tracker.log_hyperparams({k: v for k, v in config.items() if k != "ckpt_path"})
        remember_run(tracker, run_dir)
    if module.trainable:
        with warnings.catch_warnings():
            # Mid-epoch resume is exact without a stateful loader: ForecastDataModule skips the batches the
            # restored loop says are done, and RandomState restores the generators.
            warnings.filterwarnings("ignore", message=".*dataloader is not resumable.*")
            # Checkpoints after the optimiser step are what an exact resume needs.
            warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")
            trainer.fit(module, datamodule=data, ckpt_path=checkpoint)
    if "val/rmse" not in trainer.callback_metrics:  # a baseline, or stopped by max_steps before any validation
        trainer.validate(module, datamodule=data, verbose=False)
    tracked = None
    if tracker is None:
        save_model(run_dir, module, data.info, objects.windows.input_steps, None)
    else:
        tracked = log_finished_training(
            tracker, module=module, info=data.info, input_steps=objects.windows.input_steps, run_dir=run_dir,
            best_checkpoint=trainer.checkpoint_callback.best_model_path or None,
            registered_model=objects.tracking.registered_model or cfg.name)
    report(trainer, module, run_dir, tracker, tracked)
    return 0


def build_tracker(config: TrackingConfig, name: str, run_dir: Path, resumed: bool) -> ResilientMLFlowLogger | None:
    """The MLflow logger; checks the server first so an outage stops the run before any training.

    A resumed training continues its MLflow run (runs/<name>/tracking.json remembers it)."""
    if not config.enabled:
        return None
    uri = config.resolved_uri()
    limit_requests(config.request_timeout_s)
    online = check_server(uri, config.request_timeout_s, config.fallback_allowed())
    previous = _remembered_run(run_dir) if resumed else {}
    artifacts = local_artifacts(uri)
    return ResilientMLFlowLogger(
        run_dir=run_dir, offline=not online, experiment_name=config.experiment or name, run_name=name,
        tracking_uri=uri, artifact_location=artifacts.resolve().as_uri() if artifacts else None,
        run_id=previous.get("run_id") if previous.get("uri") == uri else None,
    )


def _remembered_run(run_dir: Path) -> dict:
    path = run_dir / "tracking.json"
    return json.loads(path.read_text()) if path.exists() else {}


@rank_zero_only
def remember_run(tracker: ResilientMLFlowLogger, run_dir: Path) -> None:
    text = json.dumps({"uri": tracker.remote_uri, "run_id": tracker.run_id, "offline": tracker.offline})
    write_then_rename(run_dir / "tracking.json", lambda tmp: tmp.write_text(text))


def build_module(model: ModelConfig, info: StoreInfo, output_steps: int, optim: dict) -> ForecastModule:
    """The network named by ``model`` on the store's grid, wrapped for training."""
    channels, height, width = info.shape[1:]
    network = {"kind": model.kind, "options": model.options, "static": model.static}
    net = build_network(model.kind, channels=channels, height=height, width=width,
                        static=torch.from_numpy(info.static) if model.static else None,
                        climatology=torch.from_numpy(info.climatology), **model.options)
    if model.compile and hasattr(net, "compile_cells"):
        net.compile_cells()
    return ForecastModule(net, torch.from_numpy(info.lat_weights), torch.from_numpy(info.climatology),
                          info.channels, output_steps, network=network, **optim)


def build_trainer(config: TrainerConfig, run_dir: Path, tracker: Logger | None = None) -> pl.Trainer:
    checkpoints = run_dir / "checkpoints"
    callbacks: list[pl.Callback] = [
        ModelCheckpoint(dirpath=checkpoints, filename="best", monitor="val/loss", mode="min", save_top_k=1,
                        enable_version_counter=False),
        ModelCheckpoint(dirpath=checkpoints, save_top_k=0, save_last=True,
                        every_n_train_steps=config.checkpoint_every_n_steps, enable_version_counter=False),
        RandomState(),
    ]
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
        log_every_n_steps=config.log_every_n_steps, enable_progress_bar=config.enable_progress_bar,
        callbacks=callbacks, plugins=[AtomicCheckpointIO()], use_distributed_sampler=False,
        logger=[CSVLogger(run_dir, name="logs"), *([tracker] if tracker is not None else [])],
        default_root_dir=run_dir, num_sanity_val_steps=0,
    )


def resolve_checkpoint(ckpt_path: str | None, run_dir: Path) -> str | None:
    """``last`` → the run's last checkpoint (none yet: start afresh); a path must exist."""
    if ckpt_path is None:
        return None
    if ckpt_path == "last":
        last = run_dir / "checkpoints" / "last.ckpt"
        if last.exists():
            return str(last)
        log.info("no %s yet: training starts from the beginning", last)
        return None
    if not Path(ckpt_path).exists():
        raise ConfigError(f"--ckpt_path {ckpt_path} does not exist; give a checkpoint file or 'last'.")
    return ckpt_path


@rank_zero_only
def save_config(config: dict, run_dir: Path) -> None:
    write_then_rename(run_dir / "config.yaml", lambda tmp: tmp.write_text(yaml.safe_dump(config, sort_keys=False)))


@rank_zero_only
def report(trainer: pl.Trainer, module: ForecastModule, run_dir: Path, tracker: ResilientMLFlowLogger | None,
           tracked: dict | None) -> None:
    metrics = trainer.callback_metrics
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    rmse = {k: float(metrics[k]) for k in ("val/rmse", "val/rmse_persistence", "val/rmse_climatology") if k in metrics}
    kind = module.hparams.network["kind"]
    if module.trainable:
        print(f"Training done: {trainer.global_step} steps, {trainer.current_epoch} epochs of {kind}")
        print(f"  checkpoints  {run_dir / 'checkpoints'} (best: {Path(best).name or 'none'}, last: last.ckpt)")
    else:
        print(f"Baseline {kind}: nothing to train; validated and packaged")
    print(f"  model        {run_dir / 'model'} (weights, network and statistics: what evaluate and predict load)")
    if rmse:
        scores = ", ".join(f"{key.split('/')[1]} {value:.4f}" for key, value in rmse.items())
        print(f"  validation RMSE (normalised units): {scores}")
    if tracker is None or tracked is None:
        return
    where = tracker.remote_uri
    if tracker.offline:
        where = f"local store {tracker.store_uri} (offline: `forecast sync-runs` copies it to {tracker.remote_uri})"
    print(f"  MLflow run   {tracked['run_id']} in experiment '{tracker.experiment_name}' at {where}")
    if "version" in tracked:
        aliases = "candidate, champion" if tracked["champion"] else "candidate"
        print(f"  model        models:/{tracked['model']}@candidate (version {tracked['version']}; aliases: {aliases})")
