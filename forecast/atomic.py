"""Write-then-rename: readers (and a re-run after a kill) never see a half-written file or store."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path


def write_then_rename(path: Path, write: Callable[[Path], object]) -> Path:
    """Run ``write`` on a temporary name beside ``path``, then rename it into place; returns ``path``.

    A failure leaves nothing new at ``path`` and no temporary behind. An existing directory is swapped
    aside before the rename (a directory cannot be replaced in one step) and removed only afterwards.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        if path.is_dir():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            path.rename(old)
            tmp.rename(path)
            remove(old)
        else:
            tmp.replace(path)
    finally:
        remove(tmp)
    return path


def remove_leftovers(path: Path) -> None:
    """Remove what a killed writer of ``path`` left (SIGKILL runs no cleanup): temporaries of dead processes."""
    for leftover in path.parent.glob(f".{path.name}.*-*"):
        kind, _, pid = leftover.name.removeprefix(f".{path.name}.").partition("-")
        if kind in {"tmp", "old"} and pid.isdigit() and not _alive(int(pid)):
            remove(leftover)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own leftover from an earlier failed attempt
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove(path: Path) -> None:
    """Delete a file or a directory tree, if there."""
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
