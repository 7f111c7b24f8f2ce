"""A torch ``Dataset`` of forecast windows read from the store: ``x`` maps in, ``y`` maps out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from forecast.data.reader import FieldsReader
from forecast.data.store import StoreInfo
from forecast.data.windows import valid_starts


class WindowDataset(Dataset):
    """Every valid window of one split.

    A sample is a dict: ``x`` ``[T_in, C, H, W]`` and ``y`` ``[T_out, C, H, W]`` float32 in normalised units
    (NaN-free), ``mask`` ``[C, H, W]`` bool (True where the point has data), ``times`` ``[T_in + T_out]``
    float64 hours since the store's first time, and ``start``, the window's first position on that axis.
    """

    def __init__(self, info: StoreInfo, split: str, input_steps: int, output_steps: int, stride: int = 1):
        self.input_steps, self.output_steps = input_steps, output_steps
        self.length = input_steps + output_steps
        self.starts = valid_starts(info.segment, info.split_ranges[split], self.length, stride)
        self.reader = FieldsReader(info.path)
        self.mask = torch.from_numpy(info.mask)
        deltas = pd.to_timedelta(np.asarray(info.times - info.times[0]))
        self.hours = np.asarray(deltas / pd.Timedelta(hours=1), dtype=np.float64)

    def __len__(self) -> int:
        return int(self.starts.size)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        start = int(self.starts[index])
        window = torch.from_numpy(self.reader.read(start, start + self.length))  # [T_in + T_out, C, H, W]
        return {
            "x": window[: self.input_steps],
            "y": window[self.input_steps :],
            "mask": self.mask,
            "times": torch.from_numpy(self.hours[start : start + self.length]),
            "start": start,
        }
