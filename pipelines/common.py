"""What several stages share: where an experiment's files go, the model a config names, the code version."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import forecast
from forecast.errors import ConfigError
from forecast.inference.model_source import load_model
from forecast.package import ModelPackage
from forecast.tracking.config import TrackingConfig

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_name(name: str, key: str = "--name") -> str:
    """An experiment name is a name, never a path: it becomes runs/<name>/ and forecasts/<name>/."""
    if not _NAME.match(name) or ".." in name:
        raise ConfigError(f"{key} is {name!r}; it must be a name of letters, digits, '.', '_' or '-' (no '/', "
                          "no '..', not absolute), up to 100 characters.")
    return name


def run_folder(name: str) -> Path:
    return Path("runs") / check_name(name)


def configured_model(source: str | None, name: str, tracking: TrackingConfig) -> tuple[ModelPackage, str]:
    """The model ``source`` names (default: the experiment's last training, runs/<name>/model) and its name,
    an alias pinned to its version."""
    return load_model(source or str(run_folder(name) / "model"), tracking.resolved_uri())


def git_commit() -> str | None:
    """The commit of the code that ran, when it runs from a git checkout."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False,
                                cwd=Path(forecast.__file__).parent)
    except OSError:
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None
