"""System metrics (CPU, memory, disk, network, GPU when there is one) of a run, sampled while it trains.

MLflow samples them only for runs started through its fluent API (``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING``);
a training tracked through a client needs its monitor started on the run id."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

log = logging.getLogger(__name__)


@contextlib.contextmanager
def system_metrics(run_id: str | None, tracking_uri: str, interval_s: float, resumed: bool) -> Iterator[None]:
    """Sample ``system/*`` metrics into ``run_id`` every ``interval_s`` seconds for the block (nothing without a
    run); a resumed run continues its step count."""
    if run_id is None:
        yield
        return
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    monitor = SystemMetricsMonitor(run_id, sampling_interval=interval_s, resume_logging=resumed,
                                   tracking_uri=tracking_uri)
    monitor.start()
    try:
        yield
    finally:
        monitor.finish()
