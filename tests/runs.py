"""Run ``forecast train`` on an experiment config, in this process or as a separate program, and read its log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from pipelines.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]


def experiment(directory: Path, store: Path, **sections) -> Path:
    """Write an experiment config training on ``store`` (CPU, no progress bar) with ``sections`` merged in."""
    config = {
        "name": "test",
        "seed": 7,
        "data": {"store": str(store)},
        "windows": {"input_steps": 4, "output_steps": 4},
        "loader": {"batch_size": 8},
        "trainer": {"accelerator": "cpu", "enable_progress_bar": False, "limit_val_batches": 6},
        "optim": {"lr": 0.003, "warmup_steps": 10},
        "tracking": {"enabled": False},
    }
    for key, values in sections.items():
        config[key] = {**config.get(key, {}), **values} if isinstance(values, dict) else values
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "experiment.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def train_in_process(directory: Path, config: Path, *args: str) -> int:
    """``forecast train`` in this process with ``directory`` as the working folder (runs/ lands there)."""
    cwd = Path.cwd()
    os.chdir(directory)
    try:
        return cli_main(["train", "--config", str(config), *args])
    finally:
        os.chdir(cwd)


def train_command(config: Path, *args: str) -> list[str]:
    """``forecast train`` as a separate program, for DDP and for killing it."""
    return [sys.executable, "-m", "pipelines.cli", "train", "--config", str(config), *args]


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}


def run_train(directory: Path, config: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(train_command(config, *args), cwd=directory, env=subprocess_env(), capture_output=True,
                            text=True, timeout=timeout, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def last_validation(run_dir: Path) -> pd.Series:
    """The last row of the run's CSV log that carries validation metrics."""
    [metrics] = (run_dir / "logs").glob("version_*/metrics.csv")
    frame = pd.read_csv(metrics)
    return frame.dropna(subset=["val/rmse_normalised"]).iloc[-1]
