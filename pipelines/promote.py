"""``forecast promote``: point a registry alias (default ``champion``) at a model version, e.g. one that a reviewer
accepted although it does not beat persistence on validation."""

from __future__ import annotations

from collections.abc import Sequence

from jsonargparse import ArgumentParser
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from forecast.errors import TrackingError, first_line
from forecast.tracking.config import TrackingConfig
from forecast.tracking.registry import CHAMPION
from forecast.tracking.server import limit_requests
from pipelines.config import parse_simple


def main(argv: Sequence[str]) -> int:
    parser = ArgumentParser(prog="forecast promote", description=__doc__, exit_on_error=False)
    parser.add_argument("--model", type=str, required=True, help="registered model name")
    parser.add_argument("--version", type=str, required=True, help="version number to promote")
    parser.add_argument("--alias", type=str, default=CHAMPION, help="alias to set")
    parser.add_argument("--uri", type=str | None, default=None, help="tracking server (default as for train)")
    cfg = parse_simple(parser, argv)
    uri = TrackingConfig(uri=cfg.uri).resolved_uri()
    limit_requests(10)
    client = MlflowClient(uri)
    try:
        version = client.get_model_version(cfg.model, cfg.version)
        client.set_registered_model_alias(cfg.model, cfg.alias, cfg.version)
    except MlflowException as exc:
        where = f"{cfg.model} version {cfg.version} at {uri}"
        raise TrackingError(f"cannot promote {where}: {first_line(exc, 200)}") from exc
    skill = version.tags.get("val_rmse", "?"), version.tags.get("val_rmse_persistence", "?")
    print(f"models:/{cfg.model}@{cfg.alias} → version {cfg.version} (validation RMSE {skill[0]}, "
          f"persistence {skill[1]})")
    return 0
