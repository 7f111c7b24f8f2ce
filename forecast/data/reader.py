"""Read time ranges of the store's ``fields`` straight from its chunk files, without dask or zarr's machinery.

The store's fields are written uncompressed, one chunk per ``chunk_steps`` time steps holding every channel
and grid point, so each chunk file is a plain little-endian float32 array that can be memory-mapped: a
window is a slice of one or two maps, the page cache is shared by every DataLoader worker, and nothing
holds threads or locks across ``fork``. Stores written otherwise (compressed by another tool) are read
through zarr instead.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from forecast.errors import DataError


class FieldsReader:
    """``read(start, stop)`` → ``[stop - start, C, H, W]`` float32 from the store at ``path``."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            meta = json.loads((self.path / "fields" / "zarr.json").read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"{self.path}: array 'fields' has no readable metadata ({exc}); prepare it again.") from exc
        self.shape = tuple(meta["shape"])
        self.chunk_steps = int(meta["chunk_grid"]["configuration"]["chunk_shape"][0])
        codecs = meta.get("codecs", [])
        whole_steps = meta["chunk_grid"]["configuration"]["chunk_shape"][1:] == list(self.shape[1:])
        self.raw = (
            whole_steps
            and meta["data_type"] == "float32"
            and len(codecs) == 1
            and codecs[0]["name"] == "bytes"
            and codecs[0]["configuration"].get("endian") == "little"
        )
        self._maps: dict[int, np.ndarray] = {}
        self._pid = -1
        self._zarr = None

    def __getstate__(self) -> dict:
        # Workers get paths, not open maps: each process maps the files itself.
        state = dict(self.__dict__)
        state.update(_maps={}, _pid=-1, _zarr=None)
        return state

    def chunk_file(self, index: int) -> Path:
        return self.path / "fields" / "c" / str(index) / "0" / "0" / "0"

    def verify(self) -> None:
        """Every chunk file is there with its full size (zarr v3 stores edge chunks whole): a truncated copy
        of a store fails when it is opened, not mid-training. Stores of other tools are checked by zarr."""
        if not self.raw:
            return
        expected = self.chunk_steps * math.prod(self.shape[1:]) * 4
        for index in range(math.ceil(self.shape[0] / self.chunk_steps)):
            file = self.chunk_file(index)
            size = file.stat().st_size if file.exists() else -1
            if size != expected:
                state = "missing" if size < 0 else f"{size} bytes instead of {expected}"
                raise DataError(f"{self.path}: chunk {index} of array 'fields' is {state}; the store is damaged, "
                                "prepare it again.")

    def _chunk(self, index: int) -> np.ndarray:
        if self._pid != os.getpid():
            self._maps, self._pid = {}, os.getpid()
        chunk = self._maps.get(index)
        if chunk is None:
            file = self.chunk_file(index)
            if not file.exists():
                raise DataError(
                    f"{self.path}: chunk {index} of 'fields' is missing; the store is incomplete, prepare it again."
                )
            try:
                chunk = np.memmap(file, dtype="<f4", mode="r", shape=(self.chunk_steps, *self.shape[1:]))
            except (OSError, ValueError) as exc:  # truncated since the store was opened
                raise DataError(f"{self.path}: chunk {index} of array 'fields' cannot be read ({exc}); the store "
                                "is damaged, prepare it again.") from exc
            self._maps[index] = chunk
        return chunk

    def read(self, start: int, stop: int) -> np.ndarray:
        """Steps ``[start, stop)`` as a new array (never a view of the map)."""
        if not self.raw:
            return self._read_zarr(start, stop)
        first, last = start // self.chunk_steps, (stop - 1) // self.chunk_steps
        if first == last:
            offset = first * self.chunk_steps
            return np.array(self._chunk(first)[start - offset : stop - offset])
        parts = []
        for index in range(first, last + 1):
            offset = index * self.chunk_steps
            parts.append(self._chunk(index)[max(start - offset, 0) : min(stop - offset, self.chunk_steps)])
        return np.concatenate(parts)

    def _read_zarr(self, start: int, stop: int) -> np.ndarray:
        if self._zarr is None:
            import zarr

            self._zarr = zarr.open_array(self.path / "fields", mode="r")
        try:
            return np.asarray(self._zarr[start:stop], dtype=np.float32)
        except Exception as exc:  # a damaged chunk in a store of another tool
            raise DataError(f"{self.path}: array 'fields' cannot be read at steps {start}..{stop} ({exc}); the "
                            "store is damaged, prepare it again.") from exc
