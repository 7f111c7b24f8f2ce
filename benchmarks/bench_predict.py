"""Prediction throughput (init times/s) and the share of time spent outside the model (reading inputs, building
and writing CF files), for the WeatherBench-size ConvLSTM (32×64 grid, 3 variables, 12 → 12 steps, 4 layers × 128
channels, 5×5 kernels, patch 2) on a store of synthetic maps.

Usage: ``python benchmarks/bench_predict.py [--inits 64] [--batch 16]``. Target: under 25% outside the model.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from forecast.data.config import DataConfig
from forecast.data.prepare import prepare
from forecast.data.store import open_store
from forecast.data.synthetic import SyntheticSpec, write_synthetic
from forecast.inference.inputs import from_store
from forecast.inference.predict import predict
from forecast.inference.runner import Runner
from forecast.package import NetworkSpec, load_package, save_package
from forecast.training.finish import model_card, package_arrays

INPUT_STEPS = OUTPUT_STEPS = 12


def weatherbench_package(store: Path, folder: Path) -> Path:
    """An untrained WeatherBench-size network packaged like ``forecast train`` does: same cost as a trained one."""
    info = open_store(store)
    spec = NetworkSpec("convlstm", {"hidden": [128] * 4, "kernel_size": 5, "patch_size": 2}, static=True,
                       periodic=info.periodic)
    damping = np.zeros((OUTPUT_STEPS, *info.shape[1:]), np.float32)
    net = spec.build(info.shape[1:], info.static, damping, INPUT_STEPS, OUTPUT_STEPS)
    card = model_card(spec, info, INPUT_STEPS, OUTPUT_STEPS, {"run_id": None})
    return save_package(folder, net, card, package_arrays(info, damping))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inits", type=int, default=64, help="init times forecast")
    parser.add_argument("--batch", type=int, default=16, help="init times per model call")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        spec = SyntheticSpec(n_times=args.inits + INPUT_STEPS + 40, n_lat=32, n_lon=64,
                             variables=("t2m", "z500", "u10"))
        write_synthetic(work / "src", spec, n_files=2)
        store, _ = prepare(DataConfig(source=str(work / "src" / "*.nc"), variables=list(spec.variables),
                                      store=str(work / "store.zarr")))
        model = weatherbench_package(store, work / "model")
        runner = Runner(load_package(model), args.batch)
        series = from_store(open_store(store), runner, str(model))
        inits = list(range(series.times.size - args.inits, series.times.size))
        predict(runner, series, inits[: args.batch], work / "warm", "bench", {})  # first-call costs out of the timing
        result = predict(runner, series, inits, work / "out", "bench", {})
    per_file_mb = np.prod([OUTPUT_STEPS, 3, 32, 64]) * 4 / 2**20
    print(f"device {runner.device}, torch threads {torch.get_num_threads()}, batch {args.batch}, "
          f"{len(result.written)} init times, {per_file_mb:.2f} MB of forecast each")
    print(f"  throughput          {len(result.written) / result.total_seconds:8.2f} init times/s")
    print(f"  model               {result.model_seconds:8.2f} s")
    outside = result.total_seconds - result.model_seconds
    print(f"  outside the model   {outside:8.2f} s  = {result.share_outside_model:.1%} of {result.total_seconds:.2f} s "
          "(target < 25%)")


if __name__ == "__main__":
    main()
