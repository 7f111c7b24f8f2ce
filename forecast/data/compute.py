"""Run dask graphs with a progress bar, on the local threaded scheduler or a ``dask.distributed`` cluster."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import dask
from tqdm.dask import TqdmCallback

from forecast.errors import ConfigError


def _active_client() -> Any | None:
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:  # no client running: the local threaded scheduler does the work
        return None


def compute(*graphs: Any, description: str) -> tuple[Any, ...]:
    """``dask.compute(*graphs)`` showing a bar named ``description``."""
    client = _active_client()
    if client is None:
        # disable=None: a bar on a terminal, nothing in cron logs and pipes.
        with TqdmCallback(desc=description, unit="task", leave=False, mininterval=0.5, disable=None):
            return dask.compute(*graphs)
    from distributed import progress

    futures = client.compute(list(graphs))
    progress(futures)
    return tuple(client.gather(futures))


@contextlib.contextmanager
def cluster(scheduler: str) -> Iterator[None]:
    """Connect to the scheduler at ``scheduler`` for the block (nothing to do for an empty address)."""
    if not scheduler:
        yield
        return
    from distributed import Client

    try:
        client = Client(scheduler, timeout="15s")
    except OSError as exc:
        raise ConfigError(
            f"data.scheduler: cannot reach the dask scheduler at {scheduler} ({exc}); "
            "start it or leave data.scheduler empty to run locally."
        ) from exc
    try:
        yield
    finally:
        client.close()
