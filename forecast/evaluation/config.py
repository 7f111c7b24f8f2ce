"""Settings of the evaluate stage."""

from __future__ import annotations

from dataclasses import dataclass, field

from forecast.data.config import require
from forecast.data.windows import SPLITS


@dataclass
class EvaluateConfig:
    """Which model to score, where, and how.

    Args:
        model: models:/<name>@<alias>, runs:/<id>/model, a model folder or a checkpoint; default runs/<name>/model.
        split: the store's split to score on.
        thresholds: per channel, the values for CSI/POD/FAR (e.g. ``{tp: [0.5, 2.0]}`` for precipitation).
        map_dates: init times (ISO) whose truth/forecast/error maps are drawn; default the split's first.
        batch_size: windows per model call.
    """

    model: str | None = None
    split: str = "test"
    thresholds: dict[str, list[float]] = field(default_factory=dict)
    map_dates: list[str] = field(default_factory=list)
    batch_size: int = 16

    def __post_init__(self) -> None:
        require(self.split in SPLITS, "evaluate.split", self.split, f"one of {', '.join(SPLITS)}")
        require(self.batch_size >= 1, "evaluate.batch_size", self.batch_size, "a whole number >= 1")
