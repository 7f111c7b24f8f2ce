"""One configuration schema for every stage: typed sections read by jsonargparse, shortcuts, one-line errors."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

from forecast.data.config import DataConfig, WindowConfig
from forecast.data.datamodule import ForecastDataModule
from forecast.errors import ConfigError
from forecast.evaluation.config import EvaluateConfig
from forecast.inference.config import PredictConfig
from forecast.tracking.config import TrackingConfig
from forecast.training.config import ModelConfig, TrainerConfig
from forecast.training.module import ForecastModule

# Short flags of the data stages that work without a config file, rewritten to their full keys before
# parsing. A converter of None marks a flag that takes no value.
Shortcuts = dict[str, tuple[str, Callable[[str], str] | None]]
DATA_SHORTCUTS: Shortcuts = {
    "--overwrite": ("--data.overwrite", None),
    "--source": ("--data.source", str),
    "--variables": ("--data.variables", lambda v: "[" + v + "]"),
    "--output": ("--data.output", str),
    "--train": ("--data.splits.train", lambda v: _period(v, "--train")),
    "--val": ("--data.splits.val", lambda v: _period(v, "--val")),
    "--test": ("--data.splits.test", lambda v: _period(v, "--test")),
}


def _period(value: str, flag: str) -> str:
    start, sep, end = value.partition("/")
    if not sep or not start or not end:
        raise ConfigError(f"{flag} takes START/END (e.g. 2000-01-01/2009-12-31), got '{value}'.")
    return f"{{start: '{start}', end: '{end}'}}"


def expand_shortcuts(argv: Sequence[str], shortcuts: Shortcuts) -> list[str]:
    """``--source x`` → ``--data.source x``; ``--overwrite`` alone → ``--data.overwrite true``."""
    out: list[str] = []
    args = list(argv)
    while args:
        flag, eq, inline = args.pop(0).partition("=")
        if flag not in shortcuts:
            out.append(flag + eq + inline)
            continue
        key, convert = shortcuts[flag]
        if convert is None:
            out += [key, inline or "true"]
            continue
        if not eq and not args:
            raise ConfigError(f"{flag} needs a value.")
        out += [key, convert(inline if eq else args.pop(0))]
    return out


EVALUATE_SHORTCUTS: Shortcuts = {"--model": ("--evaluate.model", str), "--split": ("--evaluate.split", str)}
PREDICT_SHORTCUTS: Shortcuts = {
    "--model": ("--predict.model", str),
    "--init-time": ("--predict.init_time", str),
    "--source": ("--predict.source", str),
    "--output": ("--predict.output_dir", str),
    "--overwrite": ("--predict.overwrite", None),
}


# Arguments the training stage wires from the store and the other sections, never set by the user.
MODULE_WIRED = {"net", "lat_weights", "climatology", "channels", "output_steps", "network"}
LOADER_WIRED = {"store", "input_steps", "output_steps", "stride", "seed"}


def build_parser(stage: str, description: str) -> ArgumentParser:
    """The shared schema; every stage reads the whole experiment file, so a typo anywhere is an error."""
    parser = ArgumentParser(
        prog=f"forecast {stage}", description=description, exit_on_error=False, allow_abbrev=False, default_env=False
    )
    parser.add_argument("--config", action=ActionConfigFile, help="experiment YAML (configs/<name>.yaml)")
    parser.add_argument(
        "--name", type=str, default="experiment", help="experiment name: runs/<name>/, MLflow experiment"
    )
    parser.add_argument("--seed", type=int, default=42, help="the one seed every random choice flows from")
    parser.add_class_arguments(DataConfig, "data", help="prepare: sources, selection, splits, the store")
    parser.add_class_arguments(WindowConfig, "windows", help="samples cut from the store")
    parser.add_class_arguments(ModelConfig, "model", help="train: the network")
    # The optimisation and loader settings are the classes' own signatures: defaults live there once.
    parser.add_class_arguments(ForecastModule, "optim", skip=MODULE_WIRED, instantiate=False,
                               help="train: loss and optimisation")
    parser.add_class_arguments(ForecastDataModule, "loader", skip=LOADER_WIRED, instantiate=False,
                               help="train: batches")
    parser.add_class_arguments(TrainerConfig, "trainer", help="train: Lightning Trainer")
    parser.add_class_arguments(TrackingConfig, "tracking", help="MLflow tracking and model registry")
    parser.add_class_arguments(EvaluateConfig, "evaluate", help="evaluate: skill on a split")
    parser.add_class_arguments(PredictConfig, "predict", help="predict: batch forecasts")
    parser.add_argument("--ckpt_path", type=str | None, default=None,
                        help="train: resume from a checkpoint file, or 'last' for runs/<name>/checkpoints/last.ckpt")
    return parser


def parse(
    parser: ArgumentParser, argv: Sequence[str], shortcuts: Shortcuts | None = None
) -> tuple[Namespace, Namespace]:
    """Parse ``argv`` into (raw namespace for saving, instantiated objects); ``ConfigError`` on any mistake."""
    try:
        cfg = parser.parse_args(expand_shortcuts(argv, shortcuts or {}))
        return cfg, parser.instantiate(cfg)
    except argparse.ArgumentError as exc:
        raise ConfigError(f"{_one_line(exc)} (`{parser.prog} --help` lists every key)") from exc


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines[:2]) if lines else type(exc).__name__


def as_dict(parser: ArgumentParser, cfg: Namespace) -> dict[str, Any]:
    """The resolved configuration as plain data (for the store, MLflow and files beside outputs)."""
    data = cfg.clone()
    data.pop("config", None)
    return data.as_dict()
