"""The MLflow "model from code" of a forecast package: MLflow copies this file into the model folder and runs it
on load; it only names the wrapper class, so no pickled object travels with a model."""

import mlflow.models

from forecast.inference.pyfunc import ForecastModel

mlflow.models.set_model(ForecastModel())
