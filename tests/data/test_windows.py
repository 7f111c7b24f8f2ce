"""The one window index: no window crosses a gap, training windows stay in their split, others may reach back."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecast.data.windows import (
    SplitRange,
    check_split_ranges,
    check_windows_fit,
    default_split_ranges,
    fitting_windows,
    window_inits,
)
from forecast.errors import ConfigError


def test_windows_skip_gap():
    segment = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])  # a gap between steps 3 and 4
    inits = window_inits(segment, 2, 1, SplitRange("train", 0, 9), inputs_inside=True)
    assert list(inits - 1) == [0, 1, 4, 5, 6]  # the windows' first steps


def test_training_windows_stay_inside_their_split_and_follow_the_stride():
    segment = np.zeros(20, dtype=int)
    inits = window_inits(segment, 2, 2, SplitRange("val", 5, 12), inputs_inside=True, stride=2)
    assert list(inits - 1) == [5, 7]


def test_evaluation_windows_take_their_inputs_from_before_the_split():
    segment = np.zeros(20, dtype=int)
    inits = window_inits(segment, 4, 2, SplitRange("test", 10, 14))
    # outputs inside 10..13: inits 9..11, inputs from step 6 on
    assert list(inits) == [9, 10, 11]


def test_prediction_needs_only_a_whole_input_window():
    segment = np.array([0, 0, 0, 1, 1, -1, 2, 2, 2])  # a gap, then a missing map (its own run) at 5
    assert list(window_inits(segment, 2)) == [1, 2, 4, 7, 8]


def test_default_splits_take_the_last_tenths():
    assert default_split_ranges(100) == {"train": (0, 80), "val": (80, 90), "test": (90, 100)}


def test_overlapping_splits_are_rejected():
    with pytest.raises(ConfigError, match="'train' and 'val' overlap"):
        check_split_ranges([SplitRange("train", 0, 10), SplitRange("val", 9, 12), SplitRange("test", 12, 14)])


def test_window_longer_than_split_is_rejected():
    splits = {"train": SplitRange("train", 0, 10), "test": SplitRange("test", 10, 13)}
    with pytest.raises(ConfigError, match="split 'test' has 3 time steps but one window needs 4"):
        check_windows_fit(splits, 2, 4)
    with pytest.raises(ConfigError, match="split 'train' has 10 time steps but one window needs 11"):
        check_windows_fit(splits, 8, 3)


def test_unset_windows_shrink_to_fit_a_short_series(caplog):
    splits = {"train": SplitRange("train", 0, 44), "val": SplitRange("val", 44, 49),
              "test": SplitRange("test", 49, 54)}
    assert fitting_windows(splits, None, None) == (12, 5)
    assert "to fit the splits" in caplog.text
    assert fitting_windows(splits, 6, 3) == (6, 3)


@given(
    breaks=st.lists(st.booleans(), min_size=1, max_size=60),
    bounds=st.tuples(st.integers(0, 60), st.integers(0, 60)),
    steps=st.tuples(st.integers(1, 6), st.integers(0, 4)),
    stride=st.integers(1, 4),
    inside=st.booleans(),
)
def test_window_inits_are_exactly_the_gap_free_windows(breaks, bounds, steps, stride, inside):
    segment = np.concatenate([[0], np.cumsum(breaks)])
    lo, hi = sorted(b % (segment.size + 1) for b in bounds)
    input_steps, output_steps = steps
    inits = window_inits(segment, input_steps, output_steps, SplitRange("s", lo, hi), inputs_inside=inside,
                         stride=stride)
    first = lo + input_steps - 1 if inside else max(lo - 1, input_steps - 1)
    expected = [i for i in range(first, hi - output_steps, stride)
                if len(set(segment[i - input_steps + 1: i + output_steps + 1])) == 1]
    assert list(inits) == expected
    for i in inits:
        assert i + output_steps < hi and i - input_steps + 1 >= (lo if inside else 0)
