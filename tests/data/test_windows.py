"""Window index arithmetic: no window crosses a gap or a split boundary, and none is missed."""

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
    valid_starts,
)
from forecast.errors import ConfigError


def test_windows_skip_gap():
    segment = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])  # a gap between steps 3 and 4
    starts = valid_starts(segment, SplitRange("train", 0, 9), length=3)
    assert list(starts) == [0, 1, 4, 5, 6]


def test_windows_stay_inside_their_split_and_follow_the_stride():
    segment = np.zeros(20, dtype=int)
    assert list(valid_starts(segment, SplitRange("val", 5, 12), length=4, stride=2)) == [5, 7]


def test_default_splits_take_the_last_tenths():
    assert default_split_ranges(100) == {"train": (0, 80), "val": (80, 90), "test": (90, 100)}


def test_overlapping_splits_are_rejected():
    with pytest.raises(ConfigError, match="'train' and 'val' overlap"):
        check_split_ranges([SplitRange("train", 0, 10), SplitRange("val", 9, 12), SplitRange("test", 12, 14)])


def test_window_longer_than_split_is_rejected():
    with pytest.raises(ConfigError, match="split 'test' has 3 time steps but one window needs 4"):
        check_windows_fit([SplitRange("train", 0, 10), SplitRange("test", 10, 13)], 4)


@given(
    breaks=st.lists(st.booleans(), min_size=1, max_size=60),
    bounds=st.tuples(st.integers(0, 60), st.integers(0, 60)),
    length=st.integers(1, 8),
    stride=st.integers(1, 4),
)
def test_valid_starts_are_exactly_the_gap_free_windows(breaks, bounds, length, stride):
    segment = np.concatenate([[0], np.cumsum(breaks)])
    lo, hi = sorted(b % (segment.size + 1) for b in bounds)
    starts = valid_starts(segment, SplitRange("s", lo, hi), length, stride)
    expected = [s for s in range(lo, hi - length + 1, stride) if len(set(segment[s : s + length])) == 1]
    assert list(starts) == expected
    for s in starts:
        assert lo <= s and s + length <= hi
