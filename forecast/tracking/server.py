"""Is the tracking server there? Asked once before training, so an outage stops nothing half-done."""

from __future__ import annotations

import os
from pathlib import Path

import requests

from forecast.errors import TrackingError
from forecast.tracking.config import LOCAL_ARTIFACTS


def is_remote(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def local_artifacts(uri: str) -> Path | None:
    """Where a local store keeps artifacts: mlartifacts/ in the project; None for a server, which has its own."""
    return None if is_remote(uri) else Path(LOCAL_ARTIFACTS)


def limit_requests(timeout_s: int) -> None:
    """Bound how long one request to the server can hang (MLflow's defaults retry for minutes), unless the
    user set MLflow's own variables."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(timeout_s))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")


def server_reachable(uri: str, timeout_s: float) -> bool:
    """Whether the MLflow server at ``uri`` answers its health check (local stores are always reachable)."""
    if not is_remote(uri):
        return True
    try:
        return requests.get(f"{uri.rstrip('/')}/health", timeout=timeout_s).ok
    except requests.RequestException:
        return False


def check_server(uri: str, timeout_s: float, fallback_allowed: bool) -> bool:
    """True when the server answers; False when it does not but the user allows the local fallback;
    otherwise ``TrackingError`` (nothing has started yet)."""
    if server_reachable(uri, timeout_s):
        return True
    if fallback_allowed:
        return False
    raise TrackingError(
        f"MLflow tracking server {uri} is unreachable; start it, set MLFLOW_TRACKING_URI to one that runs, "
        "or pass --tracking.offline_fallback true to track locally and `forecast sync-runs` later."
    )
