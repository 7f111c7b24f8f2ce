"""What a finished training leaves in MLflow: provenance, statistics, plots, the checkpoint, the packaged model
and its registered version."""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from lightning.pytorch.utilities import rank_zero_only
from mlflow import MlflowClient

import forecast
from forecast.data.dataset import WindowDataset
from forecast.data.stats import denormalise
from forecast.data.store import StoreInfo
from forecast.data.timeaxis import lead_hours
from forecast.inference.output import channel_meta
from forecast.models.package import save_package
from forecast.tracking import plots
from forecast.tracking.logger import ResilientMLFlowLogger
from forecast.tracking.registry import Skill, register_version
from forecast.training.module import ForecastModule

log = logging.getLogger(__name__)
PENDING_REGISTRATION_TAG = "forecast.register_as"
MODEL_ARTIFACT = "model"


def git_commit() -> str | None:
    """The commit of the code that ran, when it runs from a git checkout."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False,
                                cwd=Path(forecast.__file__).parent)
    except OSError:
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def run_tags(kind: str, info: StoreInfo) -> dict[str, str]:
    tags = {"model_kind": kind, "dataset": info.path.stem, "dataset_hash": str(info.attrs.get("content_hash", "")),
            "forecast_version": forecast.__version__}
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def provenance(info: StoreInfo) -> dict[str, Any]:
    return {"store": str(info.path.resolve()), "content_hash": info.attrs.get("content_hash"),
            "sources": json.loads(info.attrs.get("sources", "[]")), "splits": json.loads(info.attrs["splits"]),
            "calendar": info.attrs.get("calendar"), "time_step": info.attrs.get("time_step")}


def normalisation(info: StoreInfo) -> dict[str, Any]:
    return {c: {"mean": float(m), "std": float(s)} for c, m, s in zip(info.channels, info.mean, info.std, strict=True)}


def package_description(module: ForecastModule, info: StoreInfo, input_steps: int) -> dict[str, Any]:
    return {
        "network": module.hparams.network,
        "channels": [dataclasses.asdict(meta) for meta in channel_meta(info.path)],
        "input_steps": input_steps,
        "output_steps": module.hparams.output_steps,
        "time_step": info.attrs.get("time_step"),
        "calendar": info.attrs.get("calendar"),
        "store": {"path": str(info.path.resolve()), "content_hash": info.attrs.get("content_hash")},
        "forecast_version": forecast.__version__,
    }


def package_arrays(info: StoreInfo) -> dict[str, np.ndarray]:
    return {"mean": info.mean, "std": info.std, "mask": info.mask, "climatology": info.climatology,
            "static": info.static, "lat_weights": info.lat_weights, "latitude": info.latitude,
            "longitude": info.longitude}


def draw_plots(folder: Path, module: ForecastModule, info: StoreInfo, input_steps: int, metrics_csv: Path
               ) -> list[Path]:
    """Learning curves, validation RMSE by lead (physical units) and a validation sample's maps."""
    units = [meta.units for meta in channel_meta(info.path)]
    paths = []
    if metrics_csv.exists():
        paths.append(plots.learning_curves(pd.read_csv(metrics_csv), folder / "learning_curves.png"))
    rmse = {name: values.cpu().numpy() * info.std for name, values in module.lead_rmse().items()}
    if rmse:
        hours = lead_hours(info.attrs.get("time_step", "1h"), module.hparams.output_steps)
        paths.append(plots.rmse_by_lead(rmse, info.channels, hours, units, folder / "rmse_by_lead.png",
                                        "Validation RMSE by lead time"))
    sample = WindowDataset(info, "val", input_steps, module.hparams.output_steps)[0]
    with torch.no_grad():
        y_hat = module.net.eval()(sample["x"][None].to(module.device), module.hparams.output_steps)[0].cpu()
    lead = module.hparams.output_steps - 1
    truth, forecast_ = (np.where(info.mask, denormalise(a[lead].numpy(), info.mean, info.std, 0), np.nan)
                        for a in (sample["y"], y_hat))
    valid = pd.Index(info.times).to_series().iloc[int(sample["start"]) + input_steps + lead]
    paths.append(plots.forecast_maps(truth, forecast_, info.channels, units, info.latitude, info.longitude,
                                     folder / "validation_maps.png",
                                     f"Validation sample, lead {lead + 1} (valid {valid})"))
    return paths


@rank_zero_only
def save_model(run_dir: Path, module: ForecastModule, info: StoreInfo, input_steps: int, run_id: str | None) -> Path:
    """The trained network packaged at runs/<name>/model/: what evaluate and predict load by default."""
    description = {**package_description(module, info, input_steps), "run_id": run_id}
    return save_package(run_dir / MODEL_ARTIFACT, module.net, description, package_arrays(info))


@rank_zero_only
def log_finished_training(logger: ResilientMLFlowLogger, *, module: ForecastModule, info: StoreInfo, input_steps: int,
                          run_dir: Path, best_checkpoint: str | None, registered_model: str) -> dict[str, Any]:
    """Log the artifacts and register the model; returns what was done (run id, version, where)."""
    metrics_csv = Path(module.trainer.loggers[0].log_dir) / "metrics.csv"  # the CSVLogger's, this run's
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        (tmp_dir / "data").mkdir()
        (tmp_dir / "data" / "provenance.json").write_text(json.dumps(provenance(info), indent=2))
        (tmp_dir / "data" / "normalisation.json").write_text(json.dumps(normalisation(info), indent=2))
        draw_plots(tmp_dir / "plots", module, info, input_steps, metrics_csv)
        model = save_model(run_dir, module, info, input_steps, logger.run_id)

        def upload(client: MlflowClient, run_id: str) -> None:
            client.log_artifact(run_id, str(run_dir / "config.yaml"))
            for folder in ("data", "plots"):
                client.log_artifacts(run_id, str(tmp_dir / folder), folder)
            client.log_artifacts(run_id, str(model), MODEL_ARTIFACT)
            if best_checkpoint:
                client.log_artifact(run_id, best_checkpoint, "checkpoints")

        logger.guarded(upload)
    skill = Skill.from_metrics(module.trainer.callback_metrics)
    outcome: dict[str, Any] = {"run_id": logger.run_id, "offline": logger.offline, "skill": skill}
    if logger.offline:  # the registry is the server's: sync-runs registers once the run is there
        logger.guarded(lambda client, run_id: client.set_tag(run_id, PENDING_REGISTRATION_TAG, registered_model))
        return outcome

    def register(client: MlflowClient, run_id: str) -> None:
        source = f"{client.get_run(run_id).info.artifact_uri}/{MODEL_ARTIFACT}"
        version, champion = register_version(client, registered_model, source, run_id, skill)
        outcome.update(model=registered_model, version=version.version, champion=champion)

    logger.guarded(register)
    return outcome
