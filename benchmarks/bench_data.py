"""Data-pipeline figures: Dataset windows/s against the raw chunk-read limit, and prepare throughput and peak RSS.

python benchmarks/bench_data.py                      # both parts, defaults below
python benchmarks/bench_data.py --part windows       # (a) only
python benchmarks/bench_data.py --part prepare --prepare-gb 8 --memory-cap-gb 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from forecast.data.config import DataConfig
from forecast.data.dataset import WindowDataset
from forecast.data.prepare import prepare
from forecast.data.reader import FieldsReader
from forecast.data.store import open_store
from forecast.data.synthetic import SyntheticSpec, write_synthetic


def chunk_pieces(reader: FieldsReader, start: int, length: int):
    """(chunk index, first step, last step + 1) of each chunk a window touches."""
    for index in range(start // reader.chunk_steps, (start + length - 1) // reader.chunk_steps + 1):
        offset = index * reader.chunk_steps
        yield index, max(start - offset, 0), min(start + length - offset, reader.chunk_steps)


def raw_fromfile(reader: FieldsReader, starts: np.ndarray, length: int) -> float:
    """Windows/s reading the window's bytes from the chunk files with ``np.fromfile`` (a read syscall each)."""
    step_items = int(np.prod(reader.shape[1:]))
    began = time.perf_counter()
    for start in starts:
        np.concatenate(
            [
                np.fromfile(reader.chunk_file(i), dtype="<f4", count=(hi - lo) * step_items, offset=lo * step_items * 4)
                for i, lo, hi in chunk_pieces(reader, int(start), length)
            ]
        )
    return len(starts) / (time.perf_counter() - began)


def raw_memmap(reader: FieldsReader, starts: np.ndarray, length: int) -> float:
    """Windows/s copying the window's bytes out of memory-mapped chunk files, maps opened once."""
    maps = {
        i: np.memmap(reader.chunk_file(i), dtype="<f4", mode="r")
        for i in range(-(-reader.shape[0] // reader.chunk_steps))
    }
    step_items = int(np.prod(reader.shape[1:]))
    began = time.perf_counter()
    for start in starts:
        np.concatenate(
            [maps[i][lo * step_items : hi * step_items] for i, lo, hi in chunk_pieces(reader, int(start), length)]
        )
    return len(starts) / (time.perf_counter() - began)


def dataset_reads(dataset: WindowDataset, order: np.ndarray) -> float:
    began = time.perf_counter()
    for index in order:
        dataset[int(index)]
    return len(order) / (time.perf_counter() - began)


def loader_reads(dataset: WindowDataset, workers: int, batch_size: int) -> float:
    import torch

    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        multiprocessing_context="forkserver" if workers else None,
        persistent_workers=workers > 0,
    )
    next(iter(loader))  # start the workers outside the timing
    began, served = time.perf_counter(), 0
    for batch in loader:
        served += batch["x"].shape[0]
    return served / (time.perf_counter() - began)


def bench_windows(work: Path, args: argparse.Namespace) -> None:
    spec = SyntheticSpec(n_times=args.window_steps, n_lat=64, n_lon=128, variables=("t2m", "tp", "u10"), freq="6h")
    write_synthetic(work / "win_src", spec, n_files=4)
    store, _ = prepare(
        DataConfig(
            source=str(work / "win_src" / "*.nc"),
            variables=list(spec.variables),
            store=str(work / "win.zarr"),
            chunk_mb=args.chunk_mb,
        )
    )
    info = open_store(store)
    dataset = WindowDataset(info, "train", input_steps=12, output_steps=12)
    order = np.random.default_rng(0).permutation(len(dataset))
    window_mb = 24 * np.prod(info.shape[1:]) * 4 / 2**20
    dataset_reads(dataset, order[:50])  # page cache warm for both readers
    starts = dataset.inits[order] - dataset.input_steps + 1  # a window's first step
    fromfile, memmap = raw_fromfile(dataset.reader, starts, 24), raw_memmap(dataset.reader, starts, 24)
    raw = max(fromfile, memmap)
    served = dataset_reads(dataset, order)
    print(
        f"(a) windows: store {info.shape} float32, chunk {dataset.reader.chunk_steps} steps ({args.chunk_mb} MB), "
        f"window 12+12 steps = {window_mb:.2f} MB, {len(order)} random windows, page cache warm"
    )
    print(f"    raw: numpy.fromfile of the chunks  {fromfile:9.0f} windows/s  {fromfile * window_mb:7.0f} MB/s")
    print(
        f"    raw: numpy.memmap copy of chunks   {memmap:9.0f} windows/s  {memmap * window_mb:7.0f} MB/s  (the limit)"
    )
    print(f"    WindowDataset, main process        {served:9.0f} windows/s  ratio {served / raw:.2f} of the limit")
    for workers in (2,):
        rate = loader_reads(dataset, workers, batch_size=16)
        print(
            f"    DataLoader, {workers} workers, batch 16   {rate:9.0f} windows/s  ratio {rate / raw:.2f} of the limit"
        )


def bench_prepare(work: Path, args: argparse.Namespace) -> None:
    n_lat, n_lon, variables = 180, 360, ("t2m", "tp")
    step_bytes = n_lat * n_lon * 4 * len(variables)
    n_times = int(args.prepare_gb * 2**30 // step_bytes) + 1
    spec = SyntheticSpec(n_times=n_times, n_lat=n_lat, n_lon=n_lon, variables=variables, freq="6h")
    source = work / "big_src"
    began = time.perf_counter()
    paths = write_synthetic(source, spec, n_files=args.files, compression=False)
    source_bytes = sum(p.stat().st_size for p in paths)
    print(
        f"(b) prepare: source {len(paths)} NetCDF files, {source_bytes / 2**30:.2f} GiB "
        f"({n_times} steps × {len(variables)} variables × {n_lat}×{n_lon}), generated in "
        f"{time.perf_counter() - began:.0f} s"
    )
    cap = int(args.memory_cap_gb * 2**30)
    code = (
        "import resource, sys, time, json\n"
        # RLIMIT_DATA caps the heap and private anonymous memory, what an out-of-core run must bound; an
        # address-space cap would also count mapped libraries and reserved-but-unused thread arenas.
        f"resource.setrlimit(resource.RLIMIT_DATA, ({cap}, {cap}))\n"
        "from forecast.data.config import DataConfig\nfrom forecast.data.prepare import prepare\n"
        f"cfg = DataConfig(source={str(source / '*.nc')!r}, variables={list(variables)!r}, "
        f"store={str(work / 'big.zarr')!r}, chunk_mb={args.chunk_mb})\n"
        "t = time.perf_counter(); prepare(cfg); print(json.dumps({'seconds': time.perf_counter() - t}))\n"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "MALLOC_ARENA_MAX": "2"},
    )
    if proc.returncode != 0:
        print(proc.stderr[-3000:])
        raise SystemExit(f"prepare failed under a {args.memory_cap_gb} GiB memory cap (RLIMIT_DATA)")
    seconds = json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]
    peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 2**20  # KiB → GiB
    print(
        f"    prepare under RLIMIT_DATA = {args.memory_cap_gb} GiB (source = {source_bytes / cap:.1f}× the cap): "
        f"{seconds:.0f} s, {source_bytes / 2**20 / seconds:.0f} MB/s of source NetCDF, peak RSS {peak:.2f} GiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["windows", "prepare", "all"], default="all")
    parser.add_argument("--window-steps", type=int, default=3000, help="time steps of the windows store")
    parser.add_argument("--chunk-mb", type=float, default=16.0)
    parser.add_argument("--prepare-gb", type=float, default=8.2, help="size of the synthetic source to prepare")
    parser.add_argument("--memory-cap-gb", type=float, default=2.0)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench_data_", dir=args.workdir))
    try:
        if args.part in ("windows", "all"):
            bench_windows(work, args)
        if args.part in ("prepare", "all"):
            bench_prepare(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
