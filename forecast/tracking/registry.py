"""Model Registry: every finished training registers a version; only one that beats every reference can be champion.

A user promotes a version by hand in the MLflow UI (model page → version → Aliases → add ``champion``) or with
``forecast promote --model NAME --version N``.
"""

from __future__ import annotations

import logging

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

log = logging.getLogger(__name__)
CANDIDATE, CHAMPION = "candidate", "champion"
MODEL_ARTIFACT = "model"  # where a training run keeps its model package among its artifacts
PENDING_REGISTRATION_TAG = "forecast.register_as"  # an offline run's registered-model name, for sync-runs
VERSION_TAGS_TAG = "forecast.version_tags"  # the tags (JSON) that version is to carry
SCORE_TAG = "val_rmse_normalised"  # lower is better; what a new version must beat to take the champion alias


def _champion_score(client: MlflowClient, name: str) -> float | None:
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    value = champion.tags.get(SCORE_TAG)
    return float(value) if value is not None else None


def existing_version(client: MlflowClient, name: str, run_id: str) -> ModelVersion | None:
    """The version of ``name`` already registered from ``run_id``, if any (registration is idempotent)."""
    try:
        versions = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except MlflowException:
        return None
    return max(versions, key=lambda v: int(v.version)) if versions else None


def register_version(client: MlflowClient, name: str, model_id: str, run_id: str, score: float,
                     beats_references: bool, tags: dict[str, str], description: str = "") -> tuple[ModelVersion, bool]:
    """Register the logged model ``model_id`` as a version of ``name`` (once per run), tagged with ``tags`` and its
    ``score``, and alias it ``candidate``; it also becomes ``champion`` when it beats every reference on
    validation and scores below the current champion. Returns the version and whether it became champion."""
    # The registry resolves a "models:/<id>" source through the process's tracking URI: make it this client's.
    mlflow.set_tracking_uri(client._tracking_client.tracking_uri)
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="forecast models; aliases: candidate (latest), champion "
                                                          "(beats every reference and the previous champion)")
    version = existing_version(client, name, run_id)
    if version is None:
        version = client.create_model_version(name, f"models:/{model_id}", run_id=run_id, description=description,
                                              tags={**tags, SCORE_TAG: f"{score:.6g}"}, model_id=model_id)
    client.set_registered_model_alias(name, CANDIDATE, version.version)
    current = _champion_score(client, name)
    promote = beats_references and (current is None or score < current)
    if promote:
        client.set_registered_model_alias(name, CHAMPION, version.version)
    elif not beats_references:
        log.warning("%s version %s does not beat the best reference on validation: candidate, not champion "
                    "(`forecast promote` overrides).", name, version.version)
    return version, promote
