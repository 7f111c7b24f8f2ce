"""Record a stage's results (evaluation, predictions) in MLflow; an unreachable server costs a warning, never
the results, which are on disk already."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from forecast.errors import first_line
from forecast.tracking.config import TrackingConfig
from forecast.tracking.server import TRACKING_ERRORS, limit_requests, local_artifacts, local_experiment

log = logging.getLogger(__name__)


def record(config: TrackingConfig, experiment: str, *, run_id: str | None = None, run_name: str,
           tags: dict[str, str], params: dict[str, str], metrics: dict[str, float], artifacts: Path,
           artifact_path: str) -> str | None:
    """Log into run ``run_id`` when it exists (an evaluation joins its model's training run), else into a new
    run of ``experiment``. Returns the run id, or None when tracking is off or failed."""
    if not config.enabled:
        return None
    uri = config.resolved_uri()
    limit_requests(config.request_timeout_s)
    try:
        client = MlflowClient(uri)
        existing = run_id is not None and _exists(client, run_id)
        if not existing:
            run = client.create_run(local_experiment(client, experiment, local_artifacts(uri)), run_name=run_name)
            run_id = run.info.run_id
            params_ = [Param(k, v[:6000]) for k, v in params.items()]
        else:
            params_ = []  # a training run's params are its own; the stage's go in as tags
            tags = {**tags, **{f"{run_name}.{k}": v[:5000] for k, v in params.items()}}
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
                         params=params_, tags=[RunTag(k, v) for k, v in tags.items()])
        client.log_artifacts(run_id, str(artifacts), artifact_path)
        if not existing:
            client.set_terminated(run_id)
        return run_id
    except TRACKING_ERRORS as exc:
        log.warning("could not record %s in MLflow at %s (%s); the results are on disk in %s.", run_name, uri,
                    first_line(exc, 200), artifacts)
        return None


def _exists(client: MlflowClient, run_id: str) -> bool:
    try:
        client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    return True
