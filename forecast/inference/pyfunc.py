"""The model package as an MLflow Model: a ``pyfunc`` flavour over the package folder, so that
``mlflow.pyfunc.load_model``, ``mlflow models predict`` and ``mlflow models serve`` forecast with it.

The folder keeps the package as it is (its card, weights and arrays among the artifacts) and names the wrapper
class as a model from code (``pyfunc_model.py``): nothing is pickled. ``forecast predict --model models:/…`` and
the pyfunc run the same code; the recurrence stays intact (no torch.export, which would unroll it and fix the
window length).

Input: ``x`` ``[N, T_in, C, H, W]`` float32, the input maps in the channels' physical units (NaN where missing),
and ``init_time`` ``[N]`` float64, each window's last input time in hours since 1970-01-01 00:00 on the model's
calendar. Output: ``[N, T_out, C, H, W]`` float32 in physical units, NaN where the model has no data.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import cftime
import mlflow.pyfunc
import numpy as np
from mlflow.models import Model, ModelSignature
from mlflow.types import Schema, TensorSpec

from forecast.inference.runner import Runner
from forecast.package import ModelPackage, load_package

PACKAGE = "package"  # the package's folder among the MLflow Model's artifacts
TIME_UNITS = "hours since 1970-01-01 00:00:00"


with warnings.catch_warnings(record=True):
    # MLflow asks for type hints on predict (a warning it emits under its own "once" filter, hence recorded
    # here rather than filtered); its type-hint schemas cannot say "a dict of named tensors", which the
    # signature (TensorSpec x and init_time) says and MLflow validates instead.

    class ForecastModel(mlflow.pyfunc.PythonModel):
        """``predict({"x": …, "init_time": …})`` → forecasts in physical units (see the module docstring)."""

        def load_context(self, context: Any) -> None:
            self.runner = Runner(load_package(Path(context.artifacts[PACKAGE])))

        def predict(self, context, model_input, params=None):
            return forecast_physical(self.runner, np.asarray(model_input["x"], np.float32),
                                     np.asarray(model_input["init_time"], np.float64))


def init_times_from_hours(hours: np.ndarray, calendar: str) -> np.ndarray:
    """``[N]`` hours since 1970 → times of the model's kind: numpy datetimes (standard calendars) or cftime."""
    if calendar in {"standard", "gregorian", "proleptic_gregorian"}:
        return (np.datetime64("1970-01-01T00:00", "ns") + np.round(hours * 3.6e12).astype("timedelta64[ns]"))
    return np.asarray(cftime.num2date(hours, TIME_UNITS, calendar=calendar))


def hours_from_init_times(times: np.ndarray, calendar: str) -> np.ndarray:
    """The inverse of ``init_times_from_hours``: what a client sends for its windows' init times."""
    if np.asarray(times).dtype.kind == "M":
        return (np.asarray(times, "datetime64[ns]") - np.datetime64("1970-01-01T00:00", "ns")) / np.timedelta64(1, "h")
    return np.asarray(cftime.date2num(list(times), TIME_UNITS, calendar=calendar), np.float64)


def forecast_physical(runner: Runner, x: np.ndarray, init_hours: np.ndarray) -> np.ndarray:
    """Forecasts ``[N, T_out, C, H, W]`` (physical) from input windows in physical units and their init times."""
    card = runner.card
    inits = init_times_from_hours(init_hours, card.calendar)
    step = card.step
    times = np.array([[*(step.shift(t, -k) for k in range(card.input_steps - 1, -1, -1)),
                       *step.sequence(t, card.output_steps)] for t in inits], dtype=inits.dtype)
    return runner.physical(runner.forecast(runner.normalise(x), times))


def signature(package: ModelPackage) -> ModelSignature:
    card = package.card
    grid = package.arrays["mask"].shape  # (C, H, W)
    inputs = Schema([TensorSpec(np.dtype(np.float32), (-1, card.input_steps, *grid), "x"),
                     TensorSpec(np.dtype(np.float64), (-1,), "init_time")])
    outputs = Schema([TensorSpec(np.dtype(np.float32), (-1, card.output_steps, *grid))])
    return ModelSignature(inputs=inputs, outputs=outputs)


def package_folder(model_folder: Path) -> Path:
    """The package inside an MLflow Model folder written by ``save_mlflow_model``."""
    flavor = Model.load(str(model_folder)).flavors.get("python_function", {})
    return model_folder / flavor.get("artifacts", {}).get(PACKAGE, {}).get("path", f"artifacts/{PACKAGE}")


def save_mlflow_model(package_dir: Path, folder: Path, example: dict[str, np.ndarray]) -> Path:
    """Write ``folder`` as an MLflow Model around the package at ``package_dir`` (copied in), with its signature
    and ``example`` (one real input window) as the input example."""
    package = load_package(package_dir)
    if folder.exists():
        shutil.rmtree(folder)
    mlflow.pyfunc.save_model(
        path=str(folder), python_model=str(Path(__file__).with_name("pyfunc_model.py")),
        artifacts={PACKAGE: str(package_dir)},
        signature=signature(package), input_example=example,
        # The project itself (with torch pinned by the user's install) is the one requirement.
        pip_requirements=["forecast", "mlflow", "torch"],
    )
    return folder
