"""write_then_rename: concurrent writers of one store both finish; a full disk is one ENOSPC naming the target."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest

from forecast.atomic import write_then_rename
from tests.runs import subprocess_env

ROUNDS = 40  # the unlocked swap failed in about 1 round of 20: 40 rounds catch it almost surely
PARTS = 5  # files per store: a store mixed from two writers or half-swapped shows as the wrong set


def _store_writer(target: str, who: int, barrier: Any, errors: Any) -> None:
    """Write ``target`` ``ROUNDS`` times, each write finishing together with the other writer's."""
    try:
        for round_ in range(ROUNDS):
            def write(tmp: Path, round_: int = round_) -> None:
                tmp.mkdir()
                for k in range(PARTS):
                    (tmp / f"part{k}").write_text(f"{who} {round_}")
                barrier.wait()  # both stores are complete: the swaps start at nearly the same time

            write_then_rename(Path(target), write)
            barrier.wait()  # both writers have returned
            contents = {p.name: p.read_text() for p in Path(target).iterdir()}
            assert sorted(contents) == [f"part{k}" for k in range(PARTS)], contents
            [stamp] = set(contents.values())
            assert stamp in {f"0 {round_}", f"1 {round_}"}, stamp
            leftovers = sorted(p.name for p in Path(target).parent.iterdir() if p.name != Path(target).name)
            assert not leftovers, leftovers
            barrier.wait()  # both have looked before the next round moves things
    except BaseException:
        errors.put(f"writer {who}:\n{traceback.format_exc()}")
        barrier.abort()  # the other writer stops waiting and reports a broken barrier


def test_two_writers_of_one_store_both_finish_and_one_complete_store_is_left(tmp_path):
    # Separate processes, as two cron runs would be; spawn so that no lock or thread state is inherited.
    context = multiprocessing.get_context("spawn")
    barrier, errors = context.Barrier(2, timeout=60), context.Queue()
    target = tmp_path / "out" / "store.zarr"
    writers = [context.Process(target=_store_writer, args=(str(target), who, barrier, errors)) for who in (0, 1)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=240)
    failures = []
    while not errors.empty():
        failures.append(errors.get(timeout=5))
    assert not failures, "\n".join(failures)
    assert [writer.exitcode for writer in writers] == [0, 0]
    assert sorted(p.name for p in target.parent.iterdir()) == ["store.zarr"]


def test_a_failure_not_about_space_propagates_unchanged_and_leaves_nothing(tmp_path):
    target = tmp_path / "forecast.nc"
    target.write_text("before")
    boom = RuntimeError("NetCDF: HDF error")

    def write(tmp: Path) -> None:
        tmp.write_text("half")
        raise boom

    with pytest.raises(RuntimeError) as caught:
        write_then_rename(target, write)
    assert caught.value is boom  # the disk has room: an HDF error is an HDF error
    assert target.read_text() == "before"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forecast.nc"]


def test_an_enospc_wrapped_by_a_library_is_one_enospc_naming_the_target(tmp_path):
    target = tmp_path / "store.zarr"

    def write(tmp: Path) -> None:
        tmp.mkdir()
        try:
            raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), str(tmp / "c" / "0"))
        except OSError as exc:
            raise ValueError("could not write chunk") from exc

    with pytest.raises(OSError) as caught:
        write_then_rename(target, write)
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == str(target)
    assert "Disk quota exceeded" in str(caught.value)
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_library_error_while_the_filesystem_is_full_is_one_enospc(tmp_path):
    """torch.save loses the errno; what tells a full disk then is a probe write beside the target that fails.

    /dev/full refuses every write with ENOSPC, as a full disk does: the temporary and the probe's name (the
    hidden ``.{name}.probe-{pid}``) both lead there, so the library and the probe meet a full device.
    """
    torch = pytest.importorskip("torch")
    target = tmp_path / "weights.pt"

    def write(tmp: Path) -> None:
        tmp.symlink_to("/dev/full")
        target.with_name(f".{target.name}.probe-{os.getpid()}").symlink_to("/dev/full")
        torch.save({"w": torch.zeros(100_000)}, tmp)

    with pytest.raises(OSError) as caught:
        write_then_rename(target, write)
    assert isinstance(caught.value.__cause__, RuntimeError)  # what torch raised, kept as the cause
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == str(target)
    assert not list(tmp_path.iterdir())  # neither temporary nor probe left


# Run in a child whose file-size limit makes writes past LIMIT fail with EFBIG, as a full disk would.
LIMIT = 200_000
CHILD = """
import json, sys, warnings
from pathlib import Path
warnings.simplefilter("ignore")
from forecast.atomic import write_then_rename

kind, target = sys.argv[1], Path(sys.argv[2])
if kind == "torch":
    import torch
    write = lambda tmp: torch.save({"w": torch.rand(200_000)}, tmp)
else:
    import numpy as np, xarray as xr
    ds = xr.Dataset({"a": (("t", "x"), np.random.default_rng(0).random((100, 1000), dtype=np.float32))})
    if kind == "netcdf":
        write = lambda tmp: ds.to_netcdf(tmp, engine="netcdf4")
    else:
        write = lambda tmp: ds.to_zarr(tmp, mode="w", zarr_format=3, encoding={"a": {"chunks": (100, 1000)}})
try:
    write_then_rename(target, write)
except OSError as exc:
    print(json.dumps({"errno": exc.errno, "filename": exc.filename, "message": str(exc),
                      "cause": type(exc.__cause__).__name__}))
"""


def limit_file_size(limit: int) -> None:
    """In the child before it runs: writes past ``limit`` bytes fail with EFBIG instead of killing it."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


@pytest.mark.parametrize(("kind", "name", "library_raises"), [
    ("netcdf", "forecast.nc", "RuntimeError"),  # NetCDF: HDF error
    ("torch", "weights.pt", "RuntimeError"),  # PytorchStreamWriter / unexpected pos
    ("zarr", "store.zarr", "OSError"),  # EFBIG with its errno
])
def test_a_write_past_the_file_size_limit_is_one_enospc_and_keeps_the_old_target(tmp_path, kind, name,
                                                                                   library_raises):
    target = tmp_path / name
    if kind == "zarr":
        target.mkdir()
        (target / "zarr.json").write_text("{}")
    else:
        target.write_text("before")
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))

    result = subprocess.run([sys.executable, "-c", CHILD, kind, str(target)], cwd=tmp_path, env=subprocess_env(),
                            capture_output=True, text=True, timeout=120, check=False,
                            preexec_fn=lambda: limit_file_size(LIMIT))
    assert result.returncode == 0, result.stderr[-3000:]
    raised = json.loads(result.stdout)
    assert raised["errno"] == errno.ENOSPC, raised
    assert raised["filename"] == str(target)
    assert raised["cause"] == library_raises
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before  # no temporary, no probe
    if kind != "zarr":
        assert target.read_text() == "before"
