"""Write-then-rename: readers (and a re-run after a kill) never see a half-written file or store."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import resource
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from forecast.errors import NO_SPACE

# What a probe writes beside the target to tell a full disk (or quota) from another failure: more than the
# block or so a failed write leaves free, little enough that only a (nearly) full filesystem refuses it.
PROBE_BYTES = 64 * 2**10


def write_then_rename(path: Path, write: Callable[[Path], object]) -> Path:
    """Run ``write`` on a temporary name beside ``path``, then rename it into place; returns ``path``.

    A failure leaves nothing new at ``path`` and no temporary behind; one caused by a full disk, a quota or a
    file-size limit is raised as ``OSError(ENOSPC)`` naming ``path``, whatever the library raised. An existing
    directory is swapped aside before the rename (a directory cannot be replaced in one step) and removed only
    afterwards; the swap holds a lock so that concurrent writers of one directory do not trip over each other.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        try:
            write(tmp)
        except Exception as exc:
            # Judged before the temporary goes: removing it frees the space whose lack is to be found.
            cause = _no_space_cause(exc, tmp, path.with_name(f".{path.name}.probe-{os.getpid()}"))
            if cause is None:
                raise
            raise _no_space(path, cause) from exc
        try:
            if tmp.is_dir() or path.is_dir():
                old = path.with_name(f".{path.name}.old-{os.getpid()}")
                with _locked(path):
                    _swap(tmp, path, old)
                remove(old)
            else:
                tmp.replace(path)  # one atomic step for a file: a concurrent writer's file is simply replaced
        except OSError as exc:  # a rename that needs a new directory block, or the lock file, on a full disk
            if exc.errno not in NO_SPACE:
                raise
            raise _no_space(path, exc.strerror or os.strerror(exc.errno)) from exc
    finally:
        # Never hides why the write failed (a library thread still adding files can make rmtree fail); what
        # stays is hidden and removed by the next writer of ``path`` (``remove_leftovers``).
        with contextlib.suppress(OSError):
            remove(tmp)
    return path


def _no_space(path: Path, cause: str) -> OSError:
    """The one error a full disk becomes: ENOSPC naming the target, not a temporary or a library's chunk."""
    full = os.strerror(errno.ENOSPC)
    return OSError(errno.ENOSPC, full if cause == full else f"{full} ({cause})", str(path))


def _swap(tmp: Path, path: Path, old: Path) -> None:
    """Put ``tmp`` at ``path``, moving what is there to ``old`` first; put it back if the second rename fails."""
    moved = path.exists()
    if moved:
        path.rename(old)
    try:
        tmp.rename(path)
    except OSError:
        if moved:
            old.rename(path)
        raise


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the block, through the hidden file ``.{name}.lock`` beside it.

    The holder deletes the lock file before it lets go, so none is left behind. A waiter may then hold a lock
    on the deleted file; it sees that the name no longer leads to its file and tries again on a fresh one. A
    process killed while holding leaves the empty lock file, which is harmless: the kernel released the lock,
    the next writer takes it and deletes the file.
    """
    lock = path.with_name(f".{path.name}.lock")
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            current = lock.stat()
        except FileNotFoundError:
            os.close(fd)  # deleted by the holder we waited for
            continue
        except BaseException:
            os.close(fd)
            raise
        if (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino):
            break
        os.close(fd)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)  # while still held, so nobody can lock this name's file after we let go
        os.close(fd)


def _no_space_cause(exc: BaseException, tmp: Path, probe: Path) -> str | None:
    """Why ``exc``, raised while writing ``tmp``, is a lack of space (a phrase for the message), or None.

    An errno in ``NO_SPACE`` anywhere in the exception's chain settles it. Libraries that write from C lose the
    errno: netCDF4/HDF5 raise ``RuntimeError('NetCDF: HDF error')``, torch.save ``RuntimeError('... unexpected
    pos ...')`` or ``'PytorchStreamWriter failed writing file'``, and their wording varies between versions,
    so the text is not used. Instead the situation is checked right after the failure, before the temporary is
    removed: a file of the temporary that reached the process's file-size limit (``RLIMIT_FSIZE``), or a probe
    write beside it that the filesystem refuses for lack of space or quota. A failed write fills what space
    there was (writes are retried on the rest), so a full disk stays full for the probe. ``statvfs`` would
    miss quotas and the reserve of root and misjudge copy-on-write filesystems; the probe asks the filesystem.
    A failure on a filesystem with room is left as it was.
    """
    chain = list(_chain(exc))
    for link in chain:
        if isinstance(link, OSError) and link.errno in NO_SPACE:
            return link.strerror or os.strerror(link.errno)
    if not any(isinstance(link, OSError | RuntimeError) for link in chain):
        return None
    limit = _size_limit()
    if limit is not None and any(size >= limit for size in _file_sizes(tmp)):
        return f"file-size limit of {limit} bytes reached"
    return _probe(probe, limit)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, its causes and contexts, and the members of exception groups among them, each once."""
    pending, seen = [exc], set()
    while pending:
        link = pending.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        pending += [e for e in (link.__cause__, link.__context__) if e is not None]
        if isinstance(link, BaseExceptionGroup):
            pending += list(link.exceptions)


def _size_limit() -> int | None:
    """The process's file-size limit in bytes (``ulimit -f``), or None when there is none."""
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else soft


def _file_sizes(tmp: Path) -> Iterator[int]:
    files = tmp.rglob("*") if tmp.is_dir() else [tmp]
    for file in files:
        with contextlib.suppress(OSError):
            if file.is_file():
                yield file.stat().st_size


def _probe(probe: Path, limit: int | None) -> str | None:
    """Write ``PROBE_BYTES`` (never past the file-size limit, which would raise SIGXFSZ) to ``probe`` and delete
    it; the reason the filesystem refused, or None when it took them."""
    size = PROBE_BYTES if limit is None else min(PROBE_BYTES, limit)
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        return exc.strerror if exc.errno in NO_SPACE else None
    try:
        try:
            view = memoryview(bytes(size))
            while view:  # a short write means the disk filled; the next one says why
                view = view[os.write(fd, view):]
            os.fsync(fd)  # filesystems that allocate late (NFS, some copy-on-write ones) refuse only here
        finally:
            os.close(fd)
    except OSError as exc:
        return exc.strerror if exc.errno in NO_SPACE else None
    finally:
        probe.unlink(missing_ok=True)
    return None


def remove_leftovers(path: Path) -> None:
    """Remove what a killed writer of ``path`` left (SIGKILL runs no cleanup): temporaries of dead processes."""
    for leftover in path.parent.glob(f".{path.name}.*-*"):
        kind, _, pid = leftover.name.removeprefix(f".{path.name}.").partition("-")
        if kind in {"tmp", "old", "probe"} and pid.isdigit() and not _alive(int(pid)):
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
