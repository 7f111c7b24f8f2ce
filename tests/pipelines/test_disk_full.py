"""A full disk is one ``error:`` line and exit 6, with nothing half-written: the real CLI, as a separate program
whose file-size limit (``ulimit -f``) makes writes past a few hundred kilobytes fail with EFBIG, as a full disk
fails them with ENOSPC; no root, no mock."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

from forecast.data.synthetic import SyntheticSpec, write_synthetic
from forecast.errors import NO_SPACE_EXIT
from tests.pipelines.conftest import NAME, Trained, file_name, iso
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


def assert_no_space(result: subprocess.CompletedProcess, target: Path) -> None:
    """Exit 6 and, as the last line, one ``error:`` line that names ``target``; no traceback."""
    assert result.returncode == NO_SPACE_EXIT, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no space left on device:"), last
    assert str(target) in last or target.name in last, last


def listing(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` with its size: what a failed stage must leave as it found it."""
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def hidden_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and ("tmp" in p.name or "old" in p.name
                                                                                  or "probe" in p.name))


def test_prepare_on_a_full_disk_is_one_error_line_and_leaves_no_store(tmp_path):
    write_synthetic(tmp_path / "src", SyntheticSpec(n_times=600, n_lat=16, n_lon=32, seed=3), n_files=3)
    out = tmp_path / "stores"
    result = run_limited(tmp_path, PREPARE_LIMIT, "prepare", "--source", str(tmp_path / "src" / "*.nc"),
                         "--variables", "t2m,tp", "--output", str(out / "era.zarr"))
    assert_no_space(result, out / "era.zarr")
    assert not list(out.iterdir()) if out.exists() else True  # no store, no hidden temporary
