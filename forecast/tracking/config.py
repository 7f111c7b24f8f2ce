"""Where runs are tracked; every training is tracked unless told otherwise."""

from __future__ import annotations

import os
from dataclasses import dataclass

from forecast.errors import ConfigError

DEFAULT_URI = "sqlite:///mlflow.db"  # MLflow's own default since 3.x; artifacts go to ./mlartifacts
FALLBACK_ENV = "FORECAST_OFFLINE_FALLBACK"
LOCAL_ARTIFACTS = "mlartifacts"  # beside sqlite:///mlflow.db, where `mlflow server` would put them


@dataclass
class TrackingConfig:
    """MLflow tracking of training runs.

    Args:
        enabled: log runs to MLflow (off: only the CSV log under runs/<name>/logs).
        uri: tracking server or store; default $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the project.
        experiment: MLflow experiment; default the experiment's name.
        registered_model: Model Registry name a finished training registers a version under; default the
            experiment's name.
        offline_fallback: when the server cannot be reached at start, track into a local store under
            runs/<name>/offline/ instead of stopping (also: environment FORECAST_OFFLINE_FALLBACK=1);
            `forecast sync-runs` copies it to the server later.
        request_timeout_s: how long one request to the server may take before the run goes offline.
        system_metrics_s: sample the machine's CPU, memory, disk, network and GPU use into the run every this many
            seconds while it trains (0: off).
    """

    enabled: bool = True
    uri: str | None = None
    experiment: str | None = None
    registered_model: str | None = None
    offline_fallback: bool = False
    request_timeout_s: int = 10
    system_metrics_s: float = 10.0

    def __post_init__(self) -> None:
        if self.system_metrics_s < 0:
            raise ConfigError(f"tracking.system_metrics_s is {self.system_metrics_s!r}; it must be >= 0 (0: off).")
        if self.request_timeout_s < 1:
            raise ConfigError(f"tracking.request_timeout_s is {self.request_timeout_s!r}; it must be >= 1 (seconds).")

    def resolved_uri(self) -> str:
        return self.uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI

    def fallback_allowed(self) -> bool:
        return self.offline_fallback or os.environ.get(FALLBACK_ENV, "").lower() in {"1", "true", "yes"}
