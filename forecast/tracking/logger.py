"""Lightning's ``MLFlowLogger``, made to survive the tracking server: on the first failed request the run goes
on into a local MLflow store under the experiment's folder, which ``forecast sync-runs`` later copies back."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from lightning.fabric.utilities.logger import _convert_params, _flatten_dict
from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only
from mlflow import MlflowClient
from mlflow.entities import Param, RunTag
from mlflow.exceptions import MlflowException, RestException

from forecast.errors import first_line
from forecast.redact import redact, without_credentials
from forecast.tracking.server import (
    EXPERIMENT_KIND,
    REMOTE_RUN_TAG,
    REMOTE_URI_TAG,
    TRACKING_ERRORS,
    local_experiment,
    offline_store,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
# Answers of a working store to one bad request (a param that may not change, a name taken): not an outage.
REFUSALS = {"INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST", "BAD_REQUEST",
            "INVALID_STATE", "PERMISSION_DENIED"}
RESUMED_TAG = "forecast.resumed"  # prefix of the tags that record settings a resume changed


class ResilientMLFlowLogger(MLFlowLogger):
    """``MLFlowLogger`` whose every request is guarded.

    When a request to the tracking server fails, the logger creates a run in the local store
    ``runs/<name>/offline/`` tagged with the server's URI and run id, logs the parameters and tags there
    again, and sends everything that follows there, so a finished training keeps all its metrics.
    ``offline=True`` starts there directly (the server was unreachable at start and the user opted in).

    A resumed run (``run_id`` given) keeps its record: settings the resume changed are tags
    ``forecast.resumed.<key>`` (MLflow params never change), and a resume that fails leaves a finished
    run's status as it was.
    """

    def __init__(self, *, run_dir: Path, offline: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.run_dir = run_dir
        self.remote_uri = self._tracking_uri
        self.resumed = self._run_id is not None
        self._status_before: str | None = None
        self._remote_run_id: str | None = None
        self._params: dict[str, Any] = {}
        self.offline = False
        self.keep_open = False  # set when the job is requeued: its run continues in the next job
        if offline:
            self._go_offline("the server was unreachable at start")

    @property
    def store_uri(self) -> str:
        """Where the run is tracked now: the server, or the local store once it went offline."""
        return self._tracking_uri

    @property
    def experiment_name(self) -> str:
        return self._experiment_name

    @property
    def shown_uri(self) -> str:
        """The server's URI as it may be printed: credentials redacted."""
        return redact(self.remote_uri)

    def guarded(self, call: Callable[[MlflowClient, str], T]) -> T:
        """``call(client, run_id)`` against the server, or against the local store once the server failed."""
        if not self.offline:
            try:
                return call(self.experiment, self.run_id)
            except RestException as exc:
                if exc.get_http_status_code() >= 500:
                    self._go_offline(first_line(exc, 200))
                    return call(self.experiment, self.run_id)
                return self._refused(exc)
            except MlflowException as exc:
                if exc.error_code in REFUSALS:  # a local store says no the way a server answers 4xx
                    return self._refused(exc)
                self._go_offline(first_line(exc, 200))
            except TRACKING_ERRORS as exc:
                self._go_offline(first_line(exc, 200))
        return call(self.experiment, self.run_id)

    def _refused(self, exc: MlflowException) -> None:
        """The store is up and refused this one request: going offline would not help, the training goes on."""
        log.warning("MLflow at %s refused a request: %s", self.shown_uri, first_line(exc, 200))

    def _go_offline(self, reason: str) -> None:
        uri, artifacts = offline_store(self.run_dir)
        artifacts.mkdir(parents=True, exist_ok=True)
        self._remote_run_id = self._run_id if self._initialized else None
        log.warning("MLflow server %s failed (%s); this run goes on in %s. Once the server is back, "
                    "`forecast sync-runs` copies it there.", self.shown_uri, redact(reason), uri)
        self.offline = True
        self._tracking_uri = uri
        self._mlflow_client = MlflowClient(uri)
        self._experiment_id = local_experiment(self._mlflow_client, self._experiment_name, artifacts)
        # The server without its credentials: sync-runs finds them where MLflow does (MLFLOW_TRACKING_USERNAME/…).
        tags = {**(self.tags or {}), REMOTE_URI_TAG: without_credentials(self.remote_uri),
                REMOTE_RUN_TAG: self._remote_run_id or ""}
        if self._run_name:
            tags["mlflow.runName"] = self._run_name
        self._run_id = self._mlflow_client.create_run(self._experiment_id, tags=tags).info.run_id
        self._initialized = True
        if self._params:
            self._log_params(self._mlflow_client, self._run_id)

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        self._params.update(params)
        self.guarded(self._log_params)

    def _log_params(self, client: MlflowClient, run_id: str) -> None:
        """Params the run does not have yet; on a resumed run, the ones it changed as tags instead."""
        flat = {key: str(value)[:6000] for key, value in _flatten_dict(_convert_params(self._params)).items()}
        run = client.get_run(run_id)
        if self._status_before is None:
            self._status_before = run.info.status
        if EXPERIMENT_KIND[0] not in client.get_experiment(run.info.experiment_id).tags:
            client.set_experiment_tag(run.info.experiment_id, *EXPERIMENT_KIND)  # Lightning created it untagged
        logged = run.data.params
        new = [Param(key, value) for key, value in flat.items() if key not in logged]
        changed = [RunTag(f"{RESUMED_TAG}.{key}", value) for key, value in flat.items()
                   if key in logged and logged[key] != value]
        for start in range(0, len(new), 100):
            client.log_batch(run_id, params=new[start:start + 100])
        if changed:
            client.log_batch(run_id, tags=changed)
            log.info("resumed run %s with %d changed setting(s), recorded as %s.* tags", run_id, len(changed),
                     RESUMED_TAG)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.guarded(lambda client, run_id: super(ResilientMLFlowLogger, self).log_metrics(metrics, step))

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        if not self._initialized:
            return
        if self.keep_open:
            self.guarded(lambda client, run_id: client.set_tag(run_id, "forecast.requeued", "true"))
            return
        if status != "success" and self.resumed and self._status_before == "FINISHED":
            # A resume that failed does not undo the finished run it continued; it only says it tried.
            self.guarded(lambda client, run_id: client.set_tag(run_id, f"{RESUMED_TAG}.failed", status))
            return
        self.guarded(lambda client, run_id: super(ResilientMLFlowLogger, self).finalize(status))

