"""``forecast sync-runs``: copy runs tracked locally during a server outage (runs/<name>/offline/) to the server."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from jsonargparse import ArgumentParser
from mlflow import MlflowClient

from forecast.errors import TrackingError
from forecast.redact import redact, without_credentials
from forecast.tracking.server import REMOTE_URI_TAG, limit_requests, server_reachable
from forecast.tracking.sync import pending_runs, sync_run
from pipelines.config import parse_simple


def with_known_credentials(uri: str) -> str:
    """Offline runs name their server without credentials; when $MLFLOW_TRACKING_URI is that server with them,
    use it (MLflow's MLFLOW_TRACKING_USERNAME/PASSWORD work either way)."""
    environment = os.environ.get("MLFLOW_TRACKING_URI", "")
    return environment if uri and environment and without_credentials(environment) == uri else uri


def main(argv: Sequence[str]) -> int:
    parser = ArgumentParser(prog="forecast sync-runs", description=__doc__, exit_on_error=False)
    parser.add_argument("--runs", type=str, default="runs", help="folder holding runs/<name>/offline/ stores")
    parser.add_argument("--to", type=str | None, default=None,
                        help="tracking server; default: the one each run was meant for")
    cfg = parse_simple(parser, argv)
    limit_requests(30)
    stores = sorted(Path(cfg.runs).glob("*/offline/mlflow.db"))
    copied = 0
    for store in stores:
        local = MlflowClient(f"sqlite:///{store.resolve()}")
        for run in pending_runs(local):
            target = with_known_credentials(cfg.to or run.data.tags.get(REMOTE_URI_TAG) or "")
            if not target:
                raise TrackingError(f"{store}: run {run.info.run_id} names no server; pass --to URI.")
            if not server_reachable(target, 10):
                raise TrackingError(f"MLflow server {redact(target)} is still unreachable; {store} keeps its runs, "
                                    "run `forecast sync-runs` again once it is back.")
            synced = sync_run(local, run, MlflowClient(target))
            copied += 1
            extra = f", registered {synced.registered}" if synced.registered else ""
            print(f"{store.parent.parent.name}: local run {synced.local_run_id} → {redact(target)} run "
                  f"{synced.remote_run_id} ({synced.metric_points} metric points{extra})")
    print(f"{copied} run(s) copied" if copied else f"Nothing to copy: no unsynced runs under {cfg.runs}/*/offline/.")
    return 0
