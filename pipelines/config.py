"""One experiment schema, one parser per stage: each stage shows and reads only its own sections.

An experiment file (``configs/<name>.yaml``) holds every stage's sections. A stage checks the whole file
against the whole schema (a typo anywhere is an error), then keeps the sections it reads; on the command
line, only its own keys are accepted.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docstring_parser
import yaml
from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

from forecast.data.config import DataConfig, WindowConfig
from forecast.errors import ConfigError
from forecast.evaluation.config import EvaluateConfig
from forecast.inference.config import PredictConfig
from forecast.tracking.config import TrackingConfig
from forecast.training.config import LoaderConfig, ModelConfig, OptimConfig, TrainerConfig

SECTIONS: dict[str, tuple[type, str]] = {
    "data": (DataConfig, "sources, selection, splits and the store"),
    "windows": (WindowConfig, "samples cut from the store"),
    "model": (ModelConfig, "the network"),
    "optim": (OptimConfig, "loss and optimisation"),
    "loader": (LoaderConfig, "batches"),
    "trainer": (TrainerConfig, "the Lightning Trainer"),
    "tracking": (TrackingConfig, "MLflow tracking and model registry"),
    "evaluate": (EvaluateConfig, "skill on a split"),
    "predict": (PredictConfig, "batch forecasts"),
}
TOP_LEVEL: dict[str, tuple[Any, Any, str]] = {
    "name": (str, "experiment", "experiment name: runs/<name>/, forecasts/<name>/, MLflow experiment"),
    "seed": (int, 42, "the one seed every random choice flows from"),
    "ckpt_path": (str | None, None, "resume from a checkpoint file, or 'last' for runs/<name>/checkpoints/last.ckpt"),
}
RENAMED = {"data.output": "data.store"}


@dataclass(frozen=True)
class Stage:
    """What one stage reads: top-level keys, and sections (all their keys, or only some)."""

    name: str
    top: tuple[str, ...]
    sections: dict[str, tuple[str, ...] | None]  # section -> keys read (None: all)
    description: str


STAGES = {
    "prepare": Stage("prepare", ("name",), {"data": None, "windows": None}, """\
Select, check and normalise raw maps; write one analysis-ready Zarr store.
Without a config file: forecast prepare --source 'era5/*.nc' --variables t2m,z500 --output stores/era5.zarr
Shortcuts: --source --variables --output (or --store) --train/--val/--test START/END --overwrite"""),
    "train": Stage("train", ("name", "seed", "ckpt_path"),
                   {"data": ("store",), "windows": None, "model": None, "optim": None, "loader": None,
                    "trainer": None, "tracking": None}, """\
Train a network on the experiment's store (run `forecast prepare` first); scored against every reference.
Resume after a crash or a kill: --ckpt_path last.  Several GPUs: --trainer.devices 4 --trainer.strategy ddp"""),
    "evaluate": Stage("evaluate", ("name",), {"data": ("store",), "evaluate": None, "tracking": None}, """\
Score a model and every reference forecast (persistence, climatology, window mean, damped persistence,
optical flow where it applies) on a split of the store, in physical units.
Shortcuts: --model (models:/<name>@<alias>, runs:/<id>/model, a folder or a checkpoint) --split --store"""),
    "predict": Stage("predict", ("name",), {"data": ("store",), "predict": None, "tracking": None}, """\
Forecast from the prepared store (or new raw files) for init times: latest, an ISO time, or START/END.
Shortcuts: --model --init-time --source --output --overwrite --store.  Exit 0: done or nothing to do."""),
}

# Short flags that work without a config file, rewritten to their full keys before parsing. A converter of
# None marks a flag that takes no value.
Shortcuts = dict[str, tuple[str, Callable[[str], str] | None]]


def _period(value: str, flag: str) -> str:
    start, sep, end = value.partition("/")
    if not sep or not start or not end:
        raise ConfigError(f"{flag} takes START/END (e.g. 2000-01-01/2009-12-31), got '{value}'.")
    return f"{{start: '{start}', end: '{end}'}}"


SHORTCUTS: dict[str, Shortcuts] = {
    "prepare": {
        "--overwrite": ("--data.overwrite", None),
        "--source": ("--data.source", str),
        "--variables": ("--data.variables", lambda v: "[" + v + "]"),
        "--output": ("--data.store", str),
        "--store": ("--data.store", str),
        "--train": ("--data.splits.train", lambda v: _period(v, "--train")),
        "--val": ("--data.splits.val", lambda v: _period(v, "--val")),
        "--test": ("--data.splits.test", lambda v: _period(v, "--test")),
    },
    "train": {"--store": ("--data.store", str)},
    "evaluate": {"--model": ("--evaluate.model", str), "--split": ("--evaluate.split", str),
                 "--store": ("--data.store", str)},
    "predict": {
        "--model": ("--predict.model", str),
        "--init-time": ("--predict.init_time", str),
        "--source": ("--predict.source", str),
        "--output": ("--predict.output_dir", str),
        "--overwrite": ("--predict.overwrite", None),
        "--store": ("--data.store", str),
    },
}


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


def _fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def stage_parser(stage: Stage) -> ArgumentParser:
    """The parser of one stage: its top-level keys and sections only."""
    parser = ArgumentParser(prog=f"forecast {stage.name}", description=stage.description, exit_on_error=False,
                            allow_abbrev=False, default_env=False)
    parser.add_argument("--config", action=ActionConfigFile, help="experiment YAML (configs/<name>.yaml)")
    for key in stage.top:
        kind, default, text = TOP_LEVEL[key]
        parser.add_argument(f"--{key}", type=kind, default=default, help=text)
    for section, keys in stage.sections.items():
        cls, text = SECTIONS[section]
        skip = set(_fields(cls)) - set(keys) if keys is not None else set()
        parser.add_class_arguments(cls, section, skip=skip, help=text)
    return parser


def _full_parser() -> ArgumentParser:
    """Every key of every stage: what an experiment file may hold."""
    parser = ArgumentParser(exit_on_error=False, default_env=False)
    for key, (kind, default, _) in TOP_LEVEL.items():
        parser.add_argument(f"--{key}", type=kind, default=default)
    for section, (cls, _) in SECTIONS.items():
        parser.add_class_arguments(cls, section, instantiate=False)
    return parser


def _renamed(content: dict[str, Any], where: str) -> None:
    for old, new in RENAMED.items():
        section, key = old.split(".")
        if isinstance(content.get(section), dict) and key in content[section]:
            raise ConfigError(f"{where}: {old} was renamed {new}; rename it there.")


def _read_file(path: str) -> dict[str, Any]:
    try:
        content = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"--config {path}: cannot be read as YAML ({str(exc).splitlines()[0]}).") from exc
    if not isinstance(content, dict):
        raise ConfigError(f"--config {path}: an experiment file is a mapping of sections (data:, model:, …).")
    _renamed(content, path)
    try:
        _full_parser().parse_object(content)
    except argparse.ArgumentError as exc:
        raise ConfigError(f"{path}: {_one_line(exc)} (`forecast <stage> --help` lists each stage's keys)") from exc
    return content


def _for_stage(content: dict[str, Any], stage: Stage) -> dict[str, Any]:
    """The part of an experiment file that ``stage`` reads."""
    kept: dict[str, Any] = {key: content[key] for key in stage.top if key in content}
    for section, keys in stage.sections.items():
        if isinstance(content.get(section), dict):
            kept[section] = {k: v for k, v in content[section].items() if keys is None or k in keys}
    return kept


def _owner(key: str) -> str | None:
    """The stages whose settings include the command-line key ``--section.field``."""
    name = key.removeprefix("--").split("=")[0]
    section, _, field = name.partition(".")
    owners = [s.name for s in STAGES.values()
              if (section in s.sections and (s.sections[section] is None or field.split(".")[0] in s.sections[section]))
              or (not field and section in s.top)]
    return ", ".join(owners) or None


def _stage_args(argv: list[str], stage: Stage) -> list[str]:
    """Replace each ``--config FILE`` by the part of the file the stage reads; refuse other stages' keys."""
    out: list[str] = []
    args = list(argv)
    while args:
        arg = args.pop(0)
        flag, eq, inline = arg.partition("=")
        if flag == "--config":
            path = inline if eq else (args.pop(0) if args else "")
            if not path:
                raise ConfigError("--config needs a file.")
            out += ["--config", yaml.safe_dump(_for_stage(_read_file(path), stage))]
            continue
        if flag.startswith("--") and flag not in {"--help", "-h", "--print_config"}:
            name = flag[2:]
            if name in RENAMED:
                raise ConfigError(f"--{name} was renamed --{RENAMED[name]}.")
            owners = _owner(flag)
            section = name.split(".")[0]
            reads = name in stage.top or (section in stage.sections and (
                stage.sections[section] is None or name.split(".")[1] in stage.sections[section]))
            if owners and not reads:
                raise ConfigError(f"{flag} is not a setting of `forecast {stage.name}` (it belongs to: {owners}).")
        out.append(arg)
    return out


def parse(stage_name: str, argv: Sequence[str]) -> tuple[ArgumentParser, Namespace, Namespace]:
    """Parse ``argv`` for a stage into (parser, raw namespace for saving, instantiated objects); ``ConfigError`` on
    any mistake, before any work."""
    stage = STAGES[stage_name]
    parser = stage_parser(stage)
    args = _stage_args(expand_shortcuts(argv, SHORTCUTS.get(stage_name, {})), stage)
    try:
        cfg = parser.parse_args(args)
        return parser, cfg, parser.instantiate(cfg)
    except argparse.ArgumentError as exc:
        raise ConfigError(f"{_one_line(exc)} (`{parser.prog} --help` lists its keys)") from exc


def parse_simple(parser: ArgumentParser, argv: Sequence[str]) -> Namespace:
    """Parse the arguments of a stage outside the experiment schema (synth, promote, sync-runs)."""
    try:
        return parser.instantiate(parser.parse_args(list(argv)))
    except argparse.ArgumentError as exc:
        raise ConfigError(f"{_one_line(exc)} (`{parser.prog} --help` lists its keys)") from exc


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines[:2]) if lines else type(exc).__name__


def as_dict(cfg: Namespace) -> dict[str, Any]:
    """The resolved configuration as plain data (for the store, MLflow and files beside outputs)."""
    data = cfg.clone()
    data.pop("config", None)
    return data.as_dict()


def _key_lines(prefix: str, cls: type, keys: tuple[str, ...] | None, inherited: str = "") -> list[tuple[str, ...]]:
    """``(--key, default, what it is)`` for each field of ``cls`` (nested settings flattened), from docstrings."""
    docs = {}
    for param in docstring_parser.parse(cls.__doc__ or "").params:
        for name in param.arg_name.split(", "):  # "max_epochs, max_steps: …" documents both
            docs[name] = " ".join((param.description or "").split())
    rows: list[tuple[str, ...]] = []
    hints = typing.get_type_hints(cls)
    for field_ in dataclasses.fields(cls):
        if keys is not None and field_.name not in keys:
            continue
        text = docs.get(field_.name) or inherited
        if dataclasses.is_dataclass(hints[field_.name]):
            rows += _key_lines(f"{prefix}.{field_.name}", hints[field_.name], None, text)
            continue
        default = field_.default if field_.default is not dataclasses.MISSING else (
            field_.default_factory() if field_.default_factory is not dataclasses.MISSING else None)
        rows.append((f"--{prefix}.{field_.name}", repr(default), text))
    return rows


def help_text(stage_name: str, width: int = 120) -> str:
    """A stage's help: one line per key it reads: the key, its default, what it is (cut at ``width``)."""
    stage = STAGES[stage_name]
    rows: list[tuple[str, ...]] = [
        ("--config FILE", "", "experiment YAML (configs/<name>.yaml); other stages' sections in it are ignored"),
        ("--print_config", "", "print the resolved configuration and exit"),
        *((f"--{key}", repr(TOP_LEVEL[key][1]), TOP_LEVEL[key][2]) for key in stage.top)]
    lines = [f"usage: forecast {stage.name} [--config FILE] [--key value ...]", "", stage.description, "",
             *(_row(*row, width) for row in rows)]
    for section, keys in stage.sections.items():
        cls, what = SECTIONS[section]
        lines += ["", f"{section}: {what}", *(_row(*row, width) for row in _key_lines(section, cls, keys))]
    return "\n".join(lines)


def _row(key: str, default: str, text: str, width: int) -> str:
    line = f"  {key:<32} {default:<14} {text}"
    return line if len(line) <= width else line[: width - 1] + "…"
