"""The ``forecast`` command: one subcommand per stage; user mistakes end as one line and a non-zero exit."""

from __future__ import annotations

import importlib
import logging
import sys
import warnings
from collections.abc import Sequence

from forecast.errors import NO_SPACE, NO_SPACE_EXIT, ForecastError
from forecast.redact import RedactingFilter, redact
from pipelines.config import STAGES as EXPERIMENT_STAGES
from pipelines.config import help_text

STAGES = {
    "synth": "write synthetic CF NetCDF maps (demo, tests, benchmarks)",
    "prepare": "raw maps → analysis-ready Zarr store",
    "train": "fit a network (ConvLSTM, ConvGRU, stacked LSTM, references) on the store; runs/<name>/",
    "evaluate": "skill of a model against every reference forecast on the test split (tables, plots, MLflow)",
    "predict": "batch forecasts for init times (latest, ISO time, START/END) as CF NetCDF / Zarr",
    "promote": "point a registry alias (champion) at a model version",
    "sync-runs": "copy runs tracked locally during a server outage to the MLflow server",
}


def _usage() -> str:
    rows = "\n".join(f"  {name:<9} {text}" for name, text in STAGES.items())
    return (
        f"usage: forecast <stage> [--config FILE] [--key value ...]\n\nstages:\n{rows}\n\n"
        "`forecast <stage> --help` lists a stage's keys; `--print_config` shows the resolved configuration."
    )


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:  # credentials in a URI never reach a log line
        handler.addFilter(RedactingFilter())
    for noisy in ("distributed", "numcodecs", "fsspec", "asyncio", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for own_handler in ("lightning.pytorch", "lightning.fabric"):  # they print themselves: no second copy
        logging.getLogger(own_handler).propagate = False
    logging.captureWarnings(True)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # Lightning 2.6 calls a torch pytree API that torch 2.13 deprecates, as a UserWarning on some paths.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    stage, rest = args[0], args[1:]
    if stage not in STAGES:
        print(f"error: unknown stage '{stage}'; choose one of: {', '.join(STAGES)}.", file=sys.stderr)
        return 2
    if stage in EXPERIMENT_STAGES and {"-h", "--help"} & set(rest):
        print(help_text(stage))  # before the stage's imports: help is instant
        return 0
    _setup_logging()
    return _run(stage, rest)


def _run(stage: str, rest: list[str]) -> int:
    """Run one stage; every failure a user can act on ends as one line and its exit code."""
    module = importlib.import_module(f"pipelines.{stage.replace('-', '_')}")
    # After the import: mlflow sets its own level when imported. Creating a store or an experiment is no news.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch.loggers.mlflow").setLevel(logging.ERROR)
    try:
        return module.main(rest)
    except ForecastError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        if exc.errno not in NO_SPACE:
            raise
        print(f"error: no space left on device: {exc.filename or 'the output folder'}; free some space and run "
              "the stage again (nothing half-written was left).", file=sys.stderr)
        return NO_SPACE_EXIT
    except KeyboardInterrupt:
        print("interrupted: nothing was left half-written.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
