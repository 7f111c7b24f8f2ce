"""A full disk is one ``error:`` line and exit 6, with nothing half-written: the real CLI, as a separate program
whose file-size limit (``ulimit -f``) makes writes past a few hundred kilobytes fail with EFBIG, as a full disk
fails them with ENOSPC; no root, no mock."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

from forecast.data.synthetic import SyntheticSpec, write_synthetic
from forecast.errors import NO_SPACE_EXIT
from tests.pipelines.conftest import NAME, file_name, iso
from tests.runs import subprocess_env

# Inputs are only read, logs go to pipes and Python writes no bytecode: only the outputs meet the limit.
# prepare: the store's one fields chunk is 600×2×16×32 float32 = 2.4 MB; its other files stay below 300 kB.
PREPARE_LIMIT = 1_000_000


def limit_file_size(limit: int) -> None:
    """In the child before it runs: a write past ``limit`` bytes fails with EFBIG rather than killing it."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def run_limited(cwd: Path, limit: int, *args: str) -> subprocess.CompletedProcess:
    """``forecast <args>`` as a separate program in ``cwd`` under a file-size limit of ``limit`` bytes."""
    env = {**subprocess_env(), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False, preexec_fn=lambda: limit_file_size(limit))


def assert_no_space(result: subprocess.CompletedProcess, cwd: Path, target: Path) -> None:
    """Exit 6 and, as the last line, one ``error:`` line that names ``target`` (not a temporary); no traceback."""
    assert result.returncode == NO_SPACE_EXIT, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no space left on device: "), last
    named = last.removeprefix("error: no space left on device: ").partition("; free some space")[0]
    assert cwd / named == target, last


def listing(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` with its size: what a failed stage must leave as it found it."""
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def hidden_leftovers(folder: Path) -> list[str]:
    """Temporaries, stores swapped aside, probes and locks of ``write_then_rename`` left in ``folder``."""
    return sorted(p.name for p in folder.glob(".*") if any(k in p.name for k in ("tmp", "old", "probe", "lock")))


def test_prepare_on_a_full_disk_is_one_error_line_and_leaves_no_store(tmp_path):
    write_synthetic(tmp_path / "src", SyntheticSpec(n_times=600, n_lat=16, n_lon=32, seed=3), n_files=3)
    out = tmp_path / "stores"
    result = run_limited(tmp_path, PREPARE_LIMIT, "prepare", "--source", str(tmp_path / "src" / "*.nc"),
                         "--variables", "t2m,tp", "--output", str(out / "era.zarr"))
    assert_no_space(result, tmp_path, out / "era.zarr")
    assert not out.exists() or not list(out.iterdir())  # no store, no hidden temporary


# predict: one forecast file is ~42 kB (2 channels × 4 leads × 16×32, zlib); the range store's chunks ~7 kB.
NETCDF_LIMIT = 20_000
ZARR_LIMIT = 4_000


def test_predict_on_a_full_disk_is_one_error_line_and_leaves_no_forecast_file(workdir, trained):
    init = trained.times[-3]
    folder = workdir / "forecasts" / NAME
    result = run_limited(workdir, NETCDF_LIMIT, "predict", "--config", str(trained.config), "--init-time", iso(init))
    assert_no_space(result, workdir, folder / file_name(init))
    assert not list(folder.iterdir())  # no forecast, no hidden temporary


def test_predict_range_on_a_full_disk_keeps_the_files_and_the_old_store(workdir, trained):
    inits = trained.times[-5:-2]
    span = f"{iso(inits[0])}/{iso(inits[-1])}"
    folder = workdir / "forecasts" / NAME
    done = run_limited(workdir, resource.RLIM_INFINITY, "predict", "--config", str(trained.config), "--init-time", span)
    assert done.returncode == 0, done.stderr[-3000:]
    [store] = folder.glob("*.zarr")
    before, inode = listing(folder), store.stat().st_ino

    # The files are there and skipped; writing the store again meets the limit.
    result = run_limited(workdir, ZARR_LIMIT, "predict", "--config", str(trained.config), "--init-time", span)
    assert_no_space(result, workdir, store)
    assert listing(folder) == before  # the old store and every file as they were, nothing hidden beside them
    assert store.stat().st_ino == inode
    assert not hidden_leftovers(folder)
