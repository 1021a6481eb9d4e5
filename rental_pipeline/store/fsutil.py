"""Crash-safe file primitives: atomic replace, exclusive create and inter-process locks.

Every file the store publishes goes through :func:`atomic_write`: the bytes land in a temporary
file in the *same directory* (so ``os.replace`` is a rename within one filesystem), are fsynced,
renamed over the final name, and the directory is fsynced so the rename itself survives a crash.
A writer killed at any point leaves either the old file or the new one, plus at worst a
``.tmp-*`` leftover that readers never look at and ``gc`` removes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

TMP_PREFIX = ".tmp-"


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(directory: Path) -> None:
    """Create ``directory`` (and parents) durably: a new entry must survive a crash too."""
    if directory.is_dir():
        return
    ensure_dir(directory.parent)
    try:
        directory.mkdir()
    except FileExistsError:
        return
    fsync_dir(directory.parent)


def _durable_temp(path: Path, data: bytes, mode: int) -> str:
    """``data`` fsynced in a temporary file beside ``path``, ready to be renamed or linked."""
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Publish ``data`` at ``path`` all at once: readers see the old file or the whole new one."""
    tmp = _durable_temp(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def create_exclusive(path: Path, data: bytes, *, mode: int = 0o644) -> bool:
    """Publish ``data`` at ``path`` only if nothing is there yet; False if something is.

    The bytes are made durable in a temporary file first, then ``link``ed to the final name:
    ``link`` refuses an existing name atomically, so two writers can never both succeed.
    """
    tmp = _durable_temp(path, data, mode)
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(path.parent)
    return True


@contextlib.contextmanager
def file_lock(path: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold an ``flock`` on ``path``; the kernel releases it if the holder is killed."""
    ensure_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def is_temp_leftover(path: Path) -> bool:
    return path.name.startswith(TMP_PREFIX)
