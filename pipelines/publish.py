"""The end of ``forecast train``: package the model, and hand MLflow what it keeps: artifacts, the dataset, the
MLflow Model (a logged model) and its registered version."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
from lightning.pytorch.utilities import rank_zero_only
from mlflow import MlflowClient

from forecast.data.dataset import WindowDataset
from forecast.data.stats import denormalise
from forecast.data.store import StoreInfo
from forecast.inference.pyfunc import hours_from_init_times, save_mlflow_model
from forecast.package import NetworkSpec
from forecast.tracking.datasets import log_dataset
from forecast.tracking.logger import ResilientMLFlowLogger
from forecast.tracking.models import log_model_folder
from forecast.tracking.registry import (
    MODEL_ARTIFACT,
    PENDING_REGISTRATION_TAG,
    VERSION_TAGS_TAG,
    register_version,
)
from forecast.training.finish import build_package, save_model, version_tags, write_artifacts
from forecast.training.module import ForecastModule

log = logging.getLogger(__name__)


@rank_zero_only
def finish(trainer: pl.Trainer, module: ForecastModule, info: StoreInfo, spec: NetworkSpec, input_steps: int,
           run_dir: Path, tracker: ResilientMLFlowLogger | None, registered_model: str) -> dict[str, Any]:
    """Package the model under ``run_dir``; with tracking, upload the artifacts and the MLflow Model and register
    it (or leave the registration to sync-runs when the run went offline). Returns what was done."""
    package = build_package(module, info, spec, input_steps, tracker.run_id if tracker else None)
    model, kept = save_model(run_dir / MODEL_ARTIFACT, package)
    if kept:
        log.warning("%s", kept)
    if tracker is None:
        return {"model_path": model}
    skill, tags = module.skill(), version_tags(module, info)
    outcome: dict[str, Any] = {"run_id": tracker.run_id, "offline": tracker.offline, "skill": skill,
                               "model_path": model}
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    metrics_csv = Path(trainer.loggers[0].log_dir) / "metrics.csv"  # the CSVLogger's, this run's
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_artifacts(Path(tmp) / "artifacts", module, info, spec, input_steps, metrics_csv)
        mlflow_model = save_mlflow_model(model, Path(tmp) / "mlflow_model", input_example(info, input_steps, spec,
                                                                                         module.hparams.output_steps))

        def upload(client: MlflowClient, run_id: str) -> None:
            client.log_artifact(run_id, str(run_dir / "config.yaml"))
            for part in ("data", "plots", "tables"):
                client.log_artifacts(run_id, str(folder / part), part)
            if best:
                client.log_artifact(run_id, best, "checkpoints")
            log_dataset(client, run_id, info.path.stem, info.content_hash, str(info.settings.get("data", {})
                        .get("source", info.path)), {name: f"{a} … {b}" for name, (a, b) in info.split_periods.items()})

        tracker.guarded(upload)
        if tracker.offline:  # the registry is the server's: sync-runs logs and registers the model once it is back
            tracker.guarded(lambda client, run_id: client.log_artifacts(run_id, str(mlflow_model), MODEL_ARTIFACT))
            tracker.guarded(lambda client, run_id: client.set_tag(run_id, PENDING_REGISTRATION_TAG,
                                                                  registered_model))
            tracker.guarded(lambda client, run_id: client.set_tag(run_id, VERSION_TAGS_TAG, json.dumps(tags)))
            return outcome

        def register(client: MlflowClient, run_id: str) -> None:
            model_id = log_model_folder(client, run_id, mlflow_model)
            version, champion = register_version(client, registered_model, model_id, run_id, skill.rmse["model"],
                                                 skill.beats_references, tags, version_description(tags))
            outcome.update(model=registered_model, version=version.version, champion=champion)

        tracker.guarded(register)
    return outcome


def version_description(tags: dict[str, str]) -> str:
    """A registry version's description: its validation scores in physical units."""
    scores = ", ".join(f"{key.removeprefix('val_rmse_')} {value}" for key, value in tags.items()
                       if key.startswith("val_rmse_"))
    verdict = "beats" if tags.get("beats_references") == "true" else "does not beat"
    return (f"Validation RMSE {scores}. The model {verdict} every reference (skill vs the best "
            f"{tags.get('val_skill_vs_best_reference')}).")


def input_example(info: StoreInfo, input_steps: int, spec: NetworkSpec, output_steps: int) -> dict[str, np.ndarray]:
    """One real input window of the validation split, as a client would send it: physical units, NaN where the
    data have none, and its init time in hours since 1970 on the store's calendar."""
    dataset = WindowDataset(info, "val", input_steps, output_steps, cycles=spec.cycles)
    sample = dataset[0]
    x = denormalise(sample["x"].numpy(), info.mean, info.std, channel_axis=1)
    x = np.where(info.mask, x, np.nan).astype(np.float32)[None]
    init = info.times[int(sample["init"])]
    return {"x": x, "init_time": hours_from_init_times(np.array([init]), info.calendar)}
