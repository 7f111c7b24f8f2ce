"""User-facing failures: one type per kind, each message says what, where and what to do."""


class ForecastError(Exception):
    """Base of every error a user can fix; pipelines print it as one line and exit non-zero."""

    exit_code = 2


class DataError(ForecastError):
    """Input data is missing, unreadable or inconsistent (file, variable, coordinate, time axis)."""

    exit_code = 3


class ConfigError(ForecastError):
    """A configuration key or value is wrong or inconsistent with the data."""

    exit_code = 2


class TrackingError(ForecastError):
    """The MLflow tracking server cannot be reached or refused a request."""

    exit_code = 4


class ModelError(ForecastError):
    """A model, checkpoint or model URI cannot be found or does not fit the data."""

    exit_code = 5
