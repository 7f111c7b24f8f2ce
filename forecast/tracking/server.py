"""The tracking server and the local stores: is the server there (asked once before training, so an outage stops
nothing half-done), where local stores keep runs and artifacts."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from pathlib import Path

import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from forecast.errors import TrackingError
from forecast.redact import redact
from forecast.tracking.config import LOCAL_ARTIFACTS

log = logging.getLogger(__name__)
REMOTE_URI_TAG = "forecast.remote_uri"  # on an offline run: the server it was meant for
REMOTE_RUN_TAG = "forecast.remote_run_id"  # … and its run there, when it had one
# The MLflow UI opens an experiment of this kind in its model-training view (runs, metrics, models), not GenAI's.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
SYNCED_TAG = "forecast.synced"  # on an offline run copied by sync-runs: the server run it became
# What a tracking call raises when the server is down, slow or refusing: never a reason to lose a training.
TRACKING_ERRORS = (MlflowException, requests.RequestException, OSError)


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
    # MLflow prints run and model URLs with the tracking URI in them, credentials included; the stages print
    # their own summary, with the URI redacted.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MLFLOW_PRINT_MODEL_URLS_ON_CREATION", "false")
    # Progress bars of each artifact transfer would fill a training's log; the stage reports what it uploaded.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


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
        f"MLflow tracking server {redact(uri)} is unreachable; start it, set MLFLOW_TRACKING_URI to one that runs, "
        "or pass --tracking.offline_fallback true to track locally and `forecast sync-runs` later."
    )


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def _half_created(path: Path) -> bool:
    """A store whose creation was cut short (a full disk, a kill): no schema version, or alembic's scratch
    tables of an interrupted migration left in it."""
    try:
        with contextlib.closing(sqlite3.connect(path)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            versions = db.execute("SELECT count(*) FROM alembic_version").fetchone()[0] if "alembic_version" in \
                tables else 0
    except sqlite3.Error:
        return True
    return not versions or any(name.startswith("_alembic_tmp") for name in tables)


def prepare_local_store(uri: str) -> None:
    """Create a local SQLite tracking store atomically: its schema is built and migrated under a temporary name,
    then renamed into place, so a full disk or a kill never leaves a half-migrated ``mlflow.db`` that fails
    every later training. A half-created one found in place is set aside, with a warning, and rebuilt."""
    path = _sqlite_path(uri)
    if path is None:
        return
    if path.exists() and _half_created(path):
        aside = path.with_name(f"{path.name}.broken-{int(time.time())}")
        path.rename(aside)
        log.warning("%s was left half-created (an interrupted first use); it is set aside as %s and created again.",
                    path, aside.name)
    if path.exists():
        return
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        MlflowClient(f"sqlite:///{tmp}").search_experiments(max_results=1)  # builds and migrates the schema
        with contextlib.suppress(FileExistsError):  # another process (a DDP rank) created it first: use theirs
            os.link(tmp, path)  # unlike a rename, never replaces a store another process already uses
    finally:
        tmp.unlink(missing_ok=True)


def offline_store(run_dir: Path) -> tuple[str, Path]:
    """The local tracking store of a run directory: (sqlite URI, artifact folder)."""
    folder = (run_dir / "offline").resolve()
    return f"sqlite:///{folder / 'mlflow.db'}", folder / "artifacts"


def local_experiment(client: MlflowClient, name: str, artifacts: Path | None) -> str:
    """The id of experiment ``name`` in ``client``'s store, created (with ``artifacts`` as its root) if missing."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None and experiment.lifecycle_stage != "deleted":
        return experiment.experiment_id
    location = artifacts.resolve().as_uri() if artifacts is not None else None
    return client.create_experiment(name, artifact_location=location, tags=dict([EXPERIMENT_KIND]))
