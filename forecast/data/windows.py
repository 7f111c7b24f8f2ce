"""The one window index: which init times have a full, gap-free input window (and forecast period) in a split.

A window is named by its init position ``i``, the last input map: inputs ``i - input_steps + 1 .. i``, outputs
``i + 1 .. i + output_steps``. Training, evaluation and prediction all count windows with ``window_inits``.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import numpy as np

from forecast.errors import ConfigError, DataError

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")
DEFAULT_STEPS = 12  # input and output steps when the experiment does not say


@dataclass(frozen=True)
class SplitRange:
    """Positions ``[start, stop)`` on the store's time axis that belong to one split."""

    name: str
    start: int
    stop: int

    @property
    def length(self) -> int:
        return self.stop - self.start


def window_inits(segment: np.ndarray, input_steps: int, output_steps: int = 0, split: SplitRange | None = None,
                 inputs_inside: bool = False, stride: int = 1) -> np.ndarray:
    """Init positions of every window that crosses no gap, every ``stride`` steps.

    ``segment`` ``[time]`` labels contiguous runs of the time axis (a gap starts a new label). With ``split``,
    the outputs lie inside it; the inputs may come from before it (observations known at the init time, as
    WeatherBench2 scores) unless ``inputs_inside`` (training: nothing of another split reaches the weights).
    ``output_steps`` 0 asks only for a full input window (what prediction needs).
    """
    if input_steps < 1 or output_steps < 0 or stride < 1:
        raise ConfigError(f"windows need input_steps >= 1, output_steps >= 0 and stride >= 1; got {input_steps}, "
                          f"{output_steps} and {stride}.")
    lo, hi = (0, segment.size) if split is None else (split.start, split.stop)
    first = lo + input_steps - 1 if split is None or inputs_inside else max(lo - 1, input_steps - 1)
    inits = np.arange(first, hi - output_steps, stride)
    if inits.size == 0:
        return inits
    last = np.minimum(inits + output_steps, segment.size - 1)
    same_segment = segment[inits - input_steps + 1] == segment[last]  # a window is valid iff no gap inside
    return inits[same_segment]


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


def check_windows_fit(splits: dict[str, SplitRange], input_steps: int, output_steps: int) -> None:
    """``ConfigError`` naming the split too short: training windows lie wholly in 'train', the others need room
    for their outputs (their inputs may precede them)."""
    for split in splits.values():
        needed = input_steps + output_steps if split.name == "train" else output_steps
        if split.length < needed:
            what = "input_steps + output_steps" if split.name == "train" else "output_steps"
            raise ConfigError(f"split '{split.name}' has {split.length} time steps but one window needs {needed} "
                              f"({what}): lengthen the split or shorten windows.input_steps/output_steps.")


def fitting_windows(splits: dict[str, SplitRange], input_steps: int | None, output_steps: int | None
                    ) -> tuple[int, int]:
    """The windows to use: the configured ones (checked), or defaults of ``DEFAULT_STEPS`` shortened to fit the
    splits when the experiment leaves them unset (a warning says so)."""
    if input_steps is not None and output_steps is not None:
        check_windows_fit(splits, input_steps, output_steps)
        return input_steps, output_steps
    train = splits["train"].length
    output = output_steps or min(DEFAULT_STEPS, *(s.length for s in splits.values() if s.name != "train"),
                                 train // 2)
    inputs = input_steps or min(DEFAULT_STEPS, train - output)
    if min(inputs, output) < 1:
        raise DataError(f"the training split has {train} time steps: too few for any window; give longer data.")
    check_windows_fit(splits, inputs, output)
    if (inputs, output) != (input_steps or DEFAULT_STEPS, output_steps or DEFAULT_STEPS):
        log.warning("windows: %d input and %d output steps, to fit the splits (%s); set windows.input_steps and "
                    "windows.output_steps to choose.", inputs, output,
                    ", ".join(f"{s.name} {s.length}" for s in splits.values()))
    return inputs, output
