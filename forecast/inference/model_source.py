"""Find a trained model by what a user types: an MLflow model URI, a package folder, or a checkpoint file."""

from __future__ import annotations

import os
import pickle
import re
import tempfile
import zipfile
from pathlib import Path

import torch
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException

from forecast.errors import ModelError, first_line
from forecast.package import ModelPackage, load_package
from forecast.redact import redact

MLFLOW_SCHEMES = ("models:/", "runs:/")
_ALIAS = re.compile(r"models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)")


def load_model(source: str, tracking_uri: str) -> tuple[ModelPackage, str]:
    """The model at ``source``, and what it resolved to (an alias pinned to its version, ``models:/demo/3``):

    - ``models:/<name>@<alias>``, ``models:/<name>/<version>`` or ``runs:/<run id>/model``: from MLflow;
    - a folder written by ``forecast train`` (runs/<name>/model), or an MLflow Model folder around one;
    - a Lightning checkpoint (runs/<name>/checkpoints/*.ckpt): its weights in the package folder beside it.
    """
    if source.startswith(MLFLOW_SCHEMES):
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # cron logs, not bars
        with tempfile.TemporaryDirectory() as tmp:
            try:
                source = pinned(source, tracking_uri)
                folder = download_artifacts(artifact_uri=source, dst_path=tmp, tracking_uri=tracking_uri)
            except (MlflowException, OSError) as exc:
                raise ModelError(f"model {source} not found at {redact(tracking_uri)} ({first_line(exc, 200)}); check "
                                 "the name and alias in the MLflow UI, or pass a folder like runs/<name>/model."
                                 ) from exc
            return load_folder(Path(folder)), source
    path = Path(source)
    if path.is_dir():
        return load_folder(path), source
    if path.suffix == ".ckpt" and path.is_file():
        return _from_checkpoint(path), source
    raise ModelError(f"model {source} does not exist; give models:/<name>@<alias>, runs:/<id>/model, "
                     "a folder runs/<name>/model or a checkpoint file.")


def pinned(source: str, tracking_uri: str) -> str:
    """``models:/<name>@<alias>`` → ``models:/<name>/<version>``: an alias moves, a forecast file must name what
    made it. Other URIs are returned as they are."""
    match = _ALIAS.fullmatch(source)
    if match is None:
        return source
    version = MlflowClient(tracking_uri).get_model_version_by_alias(match["name"], match["alias"])
    return f"models:/{match['name']}/{version.version}"


def load_folder(folder: Path) -> ModelPackage:
    """A package folder, or an MLflow Model folder around one (what the registry serves)."""
    if (folder / "MLmodel").is_file():
        from forecast.inference.pyfunc import package_folder  # mlflow's model machinery: only for such folders

        return load_package(package_folder(folder))
    return load_package(folder)


def _from_checkpoint(path: Path) -> ModelPackage:
    package_dir = path.parent.parent / "model"
    if not package_dir.is_dir():
        raise ModelError(f"checkpoint {path} has no model package beside it ({package_dir}); pass that run's "
                         "model folder or its MLflow URI instead.")
    package = load_package(package_dir)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        package.net.load_state_dict({k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")})
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError, pickle.UnpicklingError,
            zipfile.BadZipFile) as exc:
        raise ModelError(f"checkpoint {path} is not loadable ({first_line(exc, 160)}); give another checkpoint or "
                         "the run's model folder.") from exc
    package.card = package.card.replace(training={**package.card.training, "checkpoint": str(path)})
    return package
