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
from forecast.redact import redact
from forecast.tracking.config import TrackingConfig
from forecast.tracking.server import (
    TRACKING_ERRORS,
    limit_requests,
    local_artifacts,
    local_experiment,
    prepare_local_store,
)

log = logging.getLogger(__name__)
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: the UI nests the run under its parent


def record(config: TrackingConfig, experiment: str, *, parent_run_id: str | None = None, run_name: str,
           tags: dict[str, str], params: dict[str, str], metrics: dict[str, float], artifacts: Path,
           artifact_path: str, results: Path) -> str | None:
    """Log a stage's results as a new run of ``experiment``: a child of the training run ``parent_run_id`` when
    that run exists there (evaluations nest under the model they score and leave its record alone), else a
    run of its own. ``results`` is where they lie on disk, for the warning when MLflow cannot be reached.
    Returns the run id, or None when tracking is off or failed."""
    if not config.enabled:
        return None
    uri = config.resolved_uri()
    limit_requests(config.request_timeout_s)
    try:
        prepare_local_store(uri)
        client = MlflowClient(uri)
        parent = client.get_run(parent_run_id) if parent_run_id and _exists(client, parent_run_id) else None
        experiment_id = parent.info.experiment_id if parent else local_experiment(client, experiment,
                                                                                  local_artifacts(uri))
        run_tags = {**tags, **({PARENT_TAG: parent_run_id} if parent else {})}
        run_id = client.create_run(experiment_id, run_name=run_name, tags=run_tags).info.run_id
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
                         params=[Param(k, v[:6000]) for k, v in params.items()],
                         tags=[RunTag(k, v) for k, v in run_tags.items()])
        client.log_artifacts(run_id, str(artifacts), artifact_path)
        client.set_terminated(run_id)
        return run_id
    except TRACKING_ERRORS as exc:
        log.warning("could not record %s in MLflow at %s (%s); the results are on disk in %s.", run_name,
                    redact(uri), redact(first_line(exc, 200)), results)
        return None


def _exists(client: MlflowClient, run_id: str) -> bool:
    try:
        client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    return True
