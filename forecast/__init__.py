"""forecast: gridded CF maps to analysis-ready stores, ConvLSTM forecasts, MLflow-tracked runs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("forecast")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
