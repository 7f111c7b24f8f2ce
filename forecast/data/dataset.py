"""A torch ``Dataset`` of forecast windows read from the store: ``x`` maps in, ``y`` maps out, and their context."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from forecast.data.calendar import NO_CYCLES, Cycles
from forecast.data.reader import FieldsReader
from forecast.data.store import StoreInfo
from forecast.data.windows import window_inits


class WindowDataset(Dataset):
    """Every window of one split (``window_inits``: training windows lie wholly inside 'train'; the other splits'
    outputs lie inside them and their inputs may precede them).

    A sample is a dict: ``x`` ``[T_in, C, H, W]`` and ``y`` ``[T_out, C, H, W]`` float32 in normalised units
    (NaN-free), ``climatology`` ``[T_in + T_out, C, H, W]`` the normalised climatology of each frame's time,
    ``forcing`` ``[T_in + T_out, F]`` the ``cycles`` of each frame's time, ``mask`` ``[C, H, W]`` bool (True
    where the point has data), and ``init``, the position of the last input map on the store's time axis.
    """

    def __init__(self, info: StoreInfo, split: str, input_steps: int, output_steps: int, stride: int = 1,
                 cycles: Cycles = NO_CYCLES):
        self.input_steps, self.output_steps = input_steps, output_steps
        self.inits = window_inits(info.segment, input_steps, output_steps, info.split_ranges[split],
                                  inputs_inside=split == "train", stride=stride)
        self.reader = FieldsReader(info.path)
        self.mask = torch.from_numpy(info.mask)
        self.climatology = torch.from_numpy(np.ascontiguousarray(info.climatology))  # [S, C, H, W]
        self.slot = torch.from_numpy(info.slot.astype(np.int64))  # [time]
        self.forcing = torch.from_numpy(cycles.features(info.times))  # [time, F]
        self.resident: tuple[int, torch.Tensor] | None = None  # (first position, maps) held on a device

    def span(self) -> tuple[int, int]:
        """Positions ``[first, stop)`` of the store that this split's windows read."""
        if not len(self):
            return 0, 0
        return int(self.inits.min()) - self.input_steps + 1, int(self.inits.max()) + self.output_steps + 1

    def nbytes(self) -> int:
        first, stop = self.span()
        return (stop - first) * int(np.prod(self.reader.shape[1:])) * 4

    def make_resident(self, device: torch.device) -> None:
        """Hold every map this split reads (and the context tables) on ``device``: windows are then cut there, with
        no reads, host copies or transfers per batch (a GPU never waits for data when the split fits in it)."""
        first, stop = self.span()
        self.resident = (first, torch.from_numpy(self.reader.read(first, stop)).to(device))
        self.mask, self.climatology = self.mask.to(device), self.climatology.to(device)
        self.slot, self.forcing = self.slot.to(device), self.forcing.to(device)

    def __len__(self) -> int:
        return int(self.inits.size)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        init = int(self.inits[index])
        first, stop = init - self.input_steps + 1, init + self.output_steps + 1
        if self.resident is None:
            window = torch.from_numpy(self.reader.read(first, stop))  # [T_in + T_out, C, H, W]
        else:
            offset, maps = self.resident
            window = maps[first - offset: stop - offset]  # a view on the device
        return {
            "x": window[: self.input_steps],
            "y": window[self.input_steps:],
            "climatology": self.climatology[self.slot[first:stop]],
            "forcing": self.forcing[first:stop],
            "mask": self.mask,
            "init": init,
        }
