"""Model Registry: every finished training registers a version; only one that beats persistence can be champion.

A user promotes a version by hand in the MLflow UI (model page → version → Aliases → add ``champion``) or with
``forecast promote --model NAME --version N``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

log = logging.getLogger(__name__)
CANDIDATE, CHAMPION = "candidate", "champion"


@dataclass(frozen=True)
class Skill:
    """Validation RMSE (normalised units) of the model and its two reference forecasts."""

    rmse: float
    persistence: float
    climatology: float

    @classmethod
    def from_metrics(cls, metrics: Mapping[str, Any]) -> Skill:
        """From a run's last ``val/rmse``, ``val/rmse_persistence`` and ``val/rmse_climatology``."""
        return cls(*(float(metrics[f"val/rmse{suffix}"]) for suffix in ("", "_persistence", "_climatology")))

    @property
    def beats_persistence(self) -> bool:
        return self.rmse < self.persistence

    def tags(self) -> dict[str, str]:
        return {"val_rmse": f"{self.rmse:.6g}", "val_rmse_persistence": f"{self.persistence:.6g}",
                "val_rmse_climatology": f"{self.climatology:.6g}",
                "beats_persistence": str(self.beats_persistence).lower()}


def _champion_rmse(client: MlflowClient, name: str) -> float | None:
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    value = champion.tags.get("val_rmse")
    return float(value) if value is not None else None


def register_version(client: MlflowClient, name: str, source: str, run_id: str, skill: Skill
                     ) -> tuple[ModelVersion, bool]:
    """Register ``source`` (a model package folder's artifact URI) as a new version of ``name``, tagged with its
    skill and aliased ``candidate``; it also becomes ``champion`` when it beats persistence and the current
    champion (if any). Returns the version and whether it became champion."""
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="forecast models; aliases: candidate (latest), champion")
    version = client.create_model_version(name, source, run_id=run_id, tags=skill.tags())
    client.set_registered_model_alias(name, CANDIDATE, version.version)
    current = _champion_rmse(client, name)
    promote = skill.beats_persistence and (current is None or skill.rmse < current)
    if promote:
        client.set_registered_model_alias(name, CHAMPION, version.version)
    elif not skill.beats_persistence:
        log.warning("%s version %s does not beat persistence on validation (RMSE %.4f vs %.4f): not champion.",
                    name, version.version, skill.rmse, skill.persistence)
    return version, promote
