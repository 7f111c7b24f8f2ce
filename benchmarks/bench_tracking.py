"""What MLflow tracking adds to a training: wall time of the same short ``forecast train`` with tracking off,
into the project's SQLite store, and into an ``mlflow server`` on 127.0.0.1 (started here).

Usage: ``python benchmarks/bench_tracking.py [--steps 100]``.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

from forecast.data.config import DataConfig
from forecast.data.prepare import prepare
from forecast.data.synthetic import SyntheticSpec, write_synthetic


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(port),
               "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
               "--default-artifact-root", str(folder / "server-artifacts"), "--workers", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(f"{uri}/health", timeout=1).ok:
                return process, uri
        except requests.RequestException:
            time.sleep(0.3)
    raise SystemExit("mlflow server did not start")


def timed_training(work: Path, name: str, steps: int, tracking: dict) -> float:
    config = {
        "name": name, "data": {"store": str(work / "store.zarr")}, "windows": {"input_steps": 4, "output_steps": 4},
        "model": {"options": {"hidden": [16, 16]}}, "loader": {"batch_size": 8},
        "trainer": {"accelerator": "cpu", "max_steps": steps, "val_check_interval": 50, "limit_val_batches": 4,
                    "enable_progress_bar": False},
        "tracking": tracking,
    }
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipelines.cli", "train", "--config", str(path)], cwd=work, check=True,
                   capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_synthetic(work / "src", SyntheticSpec(n_times=600, n_lat=16, n_lon=32), n_files=2)
        source = str(work / "src" / "*.nc")
        prepare(DataConfig(source=source, variables=["t2m", "tp"], store=str(work / "store.zarr")))
        server, uri = start_server(work)
        variants = {"tracking off": {"enabled": False}, "sqlite:///mlflow.db": {"enabled": True},
                    "mlflow server (127.0.0.1)": {"enabled": True, "uri": uri}}
        try:
            timed_training(work, "warmup", args.steps, {"enabled": False})  # page cache, bytecode: not tracking's
            rows = {name: float("inf") for name in variants}
            for repeat in range(args.repeats):  # interleaved, fastest kept: others only ever slow a run down
                for k, (name, tracking) in enumerate(variants.items()):
                    seconds = timed_training(work, f"run{repeat}{k}", args.steps, tracking)
                    rows[name] = min(rows[name], seconds)
        finally:
            server.kill()
    base = rows["tracking off"]
    print(f"forecast train, ConvLSTM 16×32 grid, {args.steps} steps, 2 validations; process wall time "
          f"(imports included), fastest of {args.repeats}")
    for name, seconds in rows.items():
        print(f"  {name:<28} {seconds:7.1f} s  (+{seconds - base:5.1f} s)")


if __name__ == "__main__":
    main()
