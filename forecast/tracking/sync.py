"""Copy runs that went on in a local store (server outage, offline cluster) to the tracking server."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run
from mlflow.exceptions import MlflowException

from forecast.tracking.models import log_model_folder, run_models
from forecast.tracking.registry import MODEL_ARTIFACT, PENDING_REGISTRATION_TAG, VERSION_TAGS_TAG, register_version
from forecast.tracking.server import REMOTE_RUN_TAG, REMOTE_URI_TAG, SYNCED_TAG, local_experiment
from forecast.verification import Skill

BATCH = 500  # metrics per request, under MLflow's 1000


@dataclass(frozen=True)
class SyncedRun:
    local_run_id: str
    remote_run_id: str
    metric_points: int
    registered: str | None


def pending_runs(client: MlflowClient) -> list[Run]:
    """Runs of a local store not yet copied to a server."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    return [run for run in client.search_runs(experiments) if SYNCED_TAG not in run.data.tags]


def sync_run(local: MlflowClient, run: Run, remote: MlflowClient) -> SyncedRun:
    """Copy params, tags, full metric histories, artifacts and status of ``run`` to ``remote``; register its
    model there when the training asked for it; mark the local run synced."""
    experiment = local.get_experiment(run.info.experiment_id).name
    remote_id = run.data.tags.get(REMOTE_RUN_TAG) or ""
    try:
        remote_id = remote.get_run(remote_id).info.run_id if remote_id else ""
    except MlflowException:
        remote_id = ""  # deleted on the server meanwhile: copy as a new run
    created = not remote_id
    if created:
        remote_id = remote.create_run(local_experiment(remote, experiment, None),
                                      run_name=run.data.tags.get("mlflow.runName")).info.run_id
    logged = remote.get_run(remote_id).data.params
    params = [Param(k, v) for k, v in run.data.params.items() if k not in logged]
    for start in range(0, len(params), 100):
        remote.log_batch(remote_id, params=params[start:start + 100])
    skip = {REMOTE_RUN_TAG, REMOTE_URI_TAG, PENDING_REGISTRATION_TAG, VERSION_TAGS_TAG}
    for key, value in run.data.tags.items():
        if key not in skip:
            remote.set_tag(remote_id, key, value)
    points = [Metric(m.key, m.value, m.timestamp, m.step) for key in run.data.metrics
              for m in local.get_metric_history(run.info.run_id, key)]
    for start in range(0, len(points), BATCH):
        remote.log_batch(remote_id, metrics=points[start:start + BATCH])
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = Path(local.download_artifacts(run.info.run_id, "", tmp))
        model = artifacts / MODEL_ARTIFACT
        # The MLflow Model becomes a logged model of the server run (its Models tab), not a plain folder; once:
        # a sync cut short after logging it finds it there.
        model_id = next(iter(run_models(remote, remote_id)), None)
        if (model / "MLmodel").is_file():
            model_id = model_id or log_model_folder(remote, remote_id, model)
            shutil.rmtree(model)
        if any(artifacts.iterdir()):
            remote.log_artifacts(remote_id, str(artifacts))
    # The status is this copy's to set only when sync made the server run, or it was left running: a run that
    # finished on the server (before an outage hit a later resume) keeps its status.
    if created or remote.get_run(remote_id).info.status == "RUNNING":
        remote.set_terminated(remote_id, run.info.status if run.info.status != "RUNNING" else "FINISHED")
    if run.inputs and run.inputs.dataset_inputs:
        remote.log_inputs(remote_id, datasets=list(run.inputs.dataset_inputs))
    registered = None
    name = run.data.tags.get(PENDING_REGISTRATION_TAG)
    if name and model_id:
        skill = Skill.from_metrics(run.data.metrics)
        tags = json.loads(run.data.tags.get(VERSION_TAGS_TAG, "{}"))
        version, _ = register_version(remote, name, model_id, remote_id, skill.rmse["model"], skill.beats_references,
                                      tags)
        registered = f"models:/{name}/{version.version}"
    local.set_tag(run.info.run_id, SYNCED_TAG, remote_id)
    return SyncedRun(run.info.run_id, remote_id, len(points), registered)
