"""What the evaluate and predict stages share: the model a config names."""

from __future__ import annotations

from pathlib import Path

from forecast.inference.model_source import load_model
from forecast.models.package import ModelPackage
from forecast.tracking.config import TrackingConfig


def configured_model(source: str | None, name: str, tracking: TrackingConfig) -> tuple[ModelPackage, str]:
    """The model ``source`` names (default: the experiment's last training, runs/<name>/model) and its name."""
    source = source or str(Path("runs") / name / "model")
    return load_model(source, tracking.resolved_uri()), source
