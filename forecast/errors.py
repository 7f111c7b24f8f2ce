"""User-facing failures: one type per kind, each message says what, where and what to do."""

import errno

# A full disk, an exhausted quota, or a file-size limit: the machine, not the user's settings, stopped a write.
NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
NO_SPACE_EXIT = 6


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


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """An exception's first line (at most ``limit`` characters), or its type when it has no text: what a one-line
    message can quote of a library's multi-line error."""
    lines = str(exc).strip().splitlines()
    return lines[0][:limit] if lines else type(exc).__name__
