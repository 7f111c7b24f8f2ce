"""``forecast synth``: write synthetic CF NetCDF maps (advecting, growing and decaying features)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from jsonargparse import ActionConfigFile, ArgumentParser

from forecast.data.synthetic import SyntheticSpec, write_synthetic
from pipelines.config import parse_simple


def main(argv: Sequence[str]) -> int:
    parser = ArgumentParser(prog="forecast synth", description=__doc__, exit_on_error=False, allow_abbrev=False)
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_argument("--output", type=str, default="data/synthetic", help="folder of the NetCDF files")
    parser.add_argument("--n_files", type=int, default=4, help="files the series is split into along time")
    parser.add_class_arguments(SyntheticSpec, "spec")
    objects = parse_simple(parser, argv)
    paths = write_synthetic(Path(objects.output), objects.spec, n_files=objects.n_files)
    size_mb = sum(p.stat().st_size for p in paths) / 2**20
    print(
        f"Synthetic data written: {len(paths)} files in {objects.output}/ ({size_mb:.1f} MB), "
        f"{objects.spec.n_times} steps of {objects.spec.freq}, {objects.spec.n_lat}×{objects.spec.n_lon} grid, "
        f"variables {', '.join(objects.spec.variables)}"
    )
    return 0
