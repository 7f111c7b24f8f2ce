"""Credentials never leave the process: user:password in any URI becomes ``***`` before it is stored or shown.

MLflow reads ``MLFLOW_TRACKING_USERNAME`` and ``MLFLOW_TRACKING_PASSWORD`` itself; a URI with credentials in it
still works for connecting, but every copy of it that is logged, saved or printed is redacted here.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s'\"]+)@")


def redact(text: str) -> str:
    """``http://user:pass@host/`` → ``http://***@host/``, wherever it stands in ``text``."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", text)


def redact_tree(value: Any) -> Any:
    """``redact`` applied to every string of nested dicts, lists and tuples."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_tree(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_tree(item) for item in value)
    return value


def without_credentials(uri: str) -> str:
    """The URI with its user information removed (``http://host/``): safe to store, and still names the server;
    the credentials come back from MLflow's environment variables when it is used."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


class RedactingFilter(logging.Filter):
    """Redacts every log record's message (after %-formatting), whichever library logs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True
