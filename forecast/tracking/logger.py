"""Lightning's ``MLFlowLogger``, made to survive the tracking server: on the first failed request the run goes
on into a local MLflow store under the experiment's folder, which ``forecast sync-runs`` later copies back."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only
from mlflow import MlflowClient
from mlflow.exceptions import RestException

from forecast.errors import first_line
from forecast.tracking.server import (
    REMOTE_RUN_TAG,
    REMOTE_URI_TAG,
    TRACKING_ERRORS,
    local_experiment,
    offline_store,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


class ResilientMLFlowLogger(MLFlowLogger):
    """``MLFlowLogger`` whose every request is guarded.

    When a request to the tracking server fails, the logger creates a run in the local store
    ``runs/<name>/offline/`` tagged with the server's URI and run id, logs the parameters and tags there
    again, and sends everything that follows there, so a finished training keeps all its metrics.
    ``offline=True`` starts there directly (the server was unreachable at start and the user opted in).
    """

    def __init__(self, *, run_dir: Path, offline: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.run_dir = run_dir
        self.remote_uri = self._tracking_uri
        self._remote_run_id: str | None = None
        self._params: dict[str, Any] = {}
        self.offline = False
        if offline:
            self._go_offline("the server was unreachable at start")

    @property
    def store_uri(self) -> str:
        """Where the run is tracked now: the server, or the local store once it went offline."""
        return self._tracking_uri

    @property
    def experiment_name(self) -> str:
        return self._experiment_name

    def guarded(self, call: Callable[[MlflowClient, str], T]) -> T:
        """``call(client, run_id)`` against the server, or against the local store once the server failed."""
        if not self.offline:
            try:
                return call(self.experiment, self.run_id)
            except RestException as exc:
                if exc.get_http_status_code() >= 500:
                    self._go_offline(first_line(exc, 200))
                    return call(self.experiment, self.run_id)
                # The server is up and refused this one request (e.g. a resumed run changing a param's
                # value): going offline would not help, and the training must go on.
                log.warning("MLflow server %s refused a request: %s", self.remote_uri, first_line(exc, 200))
                return None  # type: ignore[return-value]
            except TRACKING_ERRORS as exc:
                self._go_offline(first_line(exc, 200))
        return call(self.experiment, self.run_id)

    def _go_offline(self, reason: str) -> None:
        uri, artifacts = offline_store(self.run_dir)
        artifacts.mkdir(parents=True, exist_ok=True)
        self._remote_run_id = self._run_id if self._initialized else None
        log.warning("MLflow server %s failed (%s); this run goes on in %s. Once the server is back, "
                    "`forecast sync-runs` copies it there.", self.remote_uri, reason, uri)
        self.offline = True
        self._tracking_uri = uri
        self._mlflow_client = MlflowClient(uri)
        self._experiment_id = local_experiment(self._mlflow_client, self._experiment_name, artifacts)
        tags = {**(self.tags or {}), REMOTE_URI_TAG: self.remote_uri, REMOTE_RUN_TAG: self._remote_run_id or ""}
        if self._run_name:
            tags["mlflow.runName"] = self._run_name
        self._run_id = self._mlflow_client.create_run(self._experiment_id, tags=tags).info.run_id
        self._initialized = True
        if self._params:
            super().log_hyperparams(self._params)

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        self._params.update(params)
        self.guarded(lambda client, run_id: super(ResilientMLFlowLogger, self).log_hyperparams(params))

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.guarded(lambda client, run_id: super(ResilientMLFlowLogger, self).log_metrics(metrics, step))

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        if self._initialized:
            self.guarded(lambda client, run_id: super(ResilientMLFlowLogger, self).finalize(status))

