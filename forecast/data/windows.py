"""Index arithmetic of samples: which window starts are valid inside a split without crossing a gap."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from forecast.errors import ConfigError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitRange:
    """Positions ``[start, stop)`` on the store's time axis that belong to one split."""

    name: str
    start: int
    stop: int

    @property
    def length(self) -> int:
        return self.stop - self.start


def default_split_ranges(n_times: int, fraction: float = 0.1) -> dict[str, tuple[int, int]]:
    """Last ``fraction`` of the steps for test, the ``fraction`` before it for validation, the rest for training."""
    n_hold = max(1, round(n_times * fraction))
    test_start = n_times - n_hold
    val_start = test_start - n_hold
    return {"train": (0, val_start), "val": (val_start, test_start), "test": (test_start, n_times)}


def check_split_ranges(ranges: list[SplitRange]) -> None:
    """``ConfigError`` when two splits share a time step."""
    ordered = sorted(ranges, key=lambda r: r.start)
    for first, second in itertools.pairwise(ordered):
        if second.start < first.stop:
            raise ConfigError(
                f"splits '{first.name}' and '{second.name}' overlap; "
                f"give data.splits periods that do not share any time step."
            )


def valid_starts(segment: np.ndarray, split: SplitRange, length: int, stride: int = 1) -> np.ndarray:
    """Start positions of every window of ``length`` steps inside ``split`` that crosses no gap.

    ``segment`` ``[time]`` labels contiguous runs of the time axis (a gap starts a new label);
    starts are taken every ``stride`` steps from the split's first step.
    """
    if length < 1 or stride < 1:
        raise ConfigError(f"window length ({length}) and stride ({stride}) must be at least 1.")
    starts = np.arange(split.start, split.stop - length + 1, stride)
    if starts.size == 0:
        return starts
    same_segment = segment[starts] == segment[starts + length - 1]  # a window is valid iff no gap inside
    return starts[same_segment]


def check_windows_fit(splits: list[SplitRange], length: int) -> None:
    """``ConfigError`` naming the split too short for one window of ``length`` steps."""
    for split in splits:
        if split.length < length:
            raise ConfigError(
                f"split '{split.name}' has {split.length} time steps but one window needs {length} "
                "(input_steps + output_steps): lengthen the split or shorten windows.input_steps/output_steps."
            )
