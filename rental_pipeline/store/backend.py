"""Where the store's objects live: a local folder, or S3-compatible object storage.

The store is written against this small interface of keyed objects (``collections/a/versions/v0.json``,
``blobs/sha256/ab/ab12...``) with two conditional writes, so one algorithm serves both places:

- *create-only* (``if_absent``): a version number is claimed by creating its manifest; a second
  writer that picked the same number is refused and tries the next one.
- *compare-and-swap* (``if_match``): the alias log and a version's flags are replaced only if they
  are still what the writer read (by ETag); otherwise the writer re-reads and tries again.

On a local folder the kernel's ``flock`` also serialises writers (:meth:`Backend.artifact_lock`,
:meth:`Backend.shared_lock`, :meth:`Backend.exclusive_lock`); object storage has no locks, so
there those are no-ops and the conditional writes alone keep concurrent writers on different
machines from overwriting each other (see :mod:`.s3_backend`). ``gc`` is kept safe there by a
grace period instead of the exclusive lock. Which backend a root names is decided in :mod:`.layout`.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .fsutil import atomic_write, create_exclusive, file_lock, fsync_dir, is_temp_leftover

S3_SCHEME = "s3://"
# Conditional writes that lose to another writer are retried on fresh state; this many at most.
MAX_ATTEMPTS = 200
T = TypeVar("T")


class PreconditionFailed(Exception):
    """A conditional write lost: the object exists (create-only) or changed (compare-and-swap)."""


def retrying(attempt: Callable[[], T]) -> T:
    """Run ``attempt`` until no conditional write in it loses to another writer."""
    for number in range(MAX_ATTEMPTS):
        try:
            return attempt()
        except PreconditionFailed:
            time.sleep(random.uniform(0, min(0.002 * (number + 1), 0.05)))
    raise PreconditionFailed(f"gave up after {MAX_ATTEMPTS} attempts: other writers kept changing the same records")


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: float  # seconds since the epoch
    etag: str  # changes whenever the object's bytes may have changed


@dataclass(frozen=True)
class Stored:
    """An object's bytes with the ETag they were read at (for a later compare-and-swap)."""

    data: bytes
    etag: str


class Backend(ABC):
    """Keyed objects below one root; keys are ``/``-separated paths relative to it."""

    #: how long an unreferenced blob must have been left alone before ``gc`` removes it (seconds)
    default_grace_seconds: float = 0.0

    @property
    @abstractmethod
    def location(self) -> str:
        """The root as a user writes it: a folder path or ``s3://bucket/prefix``."""

    @property
    @abstractmethod
    def local_dir(self) -> Path:
        """A folder on this machine for this store's machine-local files (a cache of blobs, and
        whatever the store's users keep per machine)."""

    def url(self, key: str) -> str:
        return f"{self.location.rstrip('/')}/{key}"

    # -- objects -----------------------------------------------------------------------------

    @abstractmethod
    def read(self, key: str) -> Stored:
        """The object's bytes and ETag; :class:`FileNotFoundError` if there is none."""

    @abstractmethod
    def write(self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None) -> str:
        """Publish ``data`` at ``key`` all at once; returns the new ETag.

        ``if_absent``: only if no object is there. ``if_match``: only if the object still has that
        ETag. A lost condition raises :class:`PreconditionFailed` and changes nothing.
        """

    def append_line(self, key: str, line: bytes, *, after: Stored | None, keep_tail: bool = False) -> None:
        """Add one record (and its newline) to a line log that was ``after`` when read (None: no
        log yet), by replacing the whole log only if it is still that: one conditional write, so
        a crash leaves the old log or the new one and :class:`PreconditionFailed` says that
        another writer appended first.

        Bytes after the log's last newline are a torn record (an older writer's crash, or a log
        cut short) and are cut off, unless the caller read them as a whole record that lost its
        newline (``keep_tail``): then that record is ended and kept.
        """
        if b"\n" in line:
            raise ValueError("a log record must be a single line")
        if after is None:
            self.write(key, line + b"\n", if_absent=True)
            return
        if keep_tail and after.data and not after.data.endswith(b"\n"):
            body = after.data + b"\n"
        else:
            body = after.data[: after.data.rfind(b"\n") + 1]
        self.write(key, body + line + b"\n", if_match=after.etag)

    @abstractmethod
    def delete(self, key: str) -> int:
        """Remove one object; returns the bytes freed (0 if it was not there)."""

    @abstractmethod
    def info(self, key: str) -> ObjectInfo | None:
        """Size, time and ETag of one object, or None."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (a folder ending in ``/``), any depth."""

    @abstractmethod
    def children(self, prefix: str) -> list[str]:
        """Names of the immediate sub-folders of ``prefix``."""

    def touch(self, key: str) -> str | None:
        """Record that a writer is about to reference ``key`` again (see :meth:`BlobStore.put`);
        its ETag afterwards, None if the object is gone."""
        found = self.info(key)
        return None if found is None else found.etag

    def leftovers(self) -> Iterator[str]:
        """Keys of what killed writers left behind (temporary files); nothing on object storage."""
        return iter(())

    def local_path(self, key: str) -> Path | None:
        """The file holding ``key`` when the objects are files on this machine; None when they are
        elsewhere (then readers go through a checked copy under :attr:`local_dir`)."""
        return None

    def exists(self) -> bool:
        """Whether the root is there at all (a folder not made yet is not; object storage is
        assumed to be)."""
        return True

    def holds(self, found: ObjectInfo, data: bytes) -> bool:
        """Whether ``found``'s ETag alone proves that the object holds exactly ``data``; False
        when the ETag cannot tell (nothing is downloaded to find out)."""
        return False

    def remove_prefix(self, prefix: str) -> None:
        """Delete every object below ``prefix`` (a folder ending in ``/``)."""
        for info in list(self.list(prefix)):
            self.delete(info.key)

    # -- locks -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def shared_lock(self) -> Iterator[None]:
        yield

    @contextlib.contextmanager
    def exclusive_lock(self) -> Iterator[None]:
        yield

    @contextlib.contextmanager
    def artifact_lock(self, name: str) -> Iterator[None]:
        yield


class LocalBackend(Backend):
    """A folder: atomic renames, ``link`` for create-only, ``flock`` for the locks.

    ETags are the file's identity (inode, size, modification time): any replacement changes it.
    The compare-and-swap writes rely on the caller holding :meth:`artifact_lock`, which every
    store operation that changes an artifact does.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def location(self) -> str:
        return str(self.root)

    @property
    def local_dir(self) -> Path:
        return self.root

    def local_path(self, key: str) -> Path:
        return self.root / key

    def exists(self) -> bool:
        return self.root.is_dir()

    def url(self, key: str) -> str:
        return str(self.local_path(key))

    def read(self, key: str) -> Stored:
        with open(self.local_path(key), "rb") as handle:
            etag = _identity(os.fstat(handle.fileno()))
            return Stored(handle.read(), etag)

    def write(self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None) -> str:
        path = self.local_path(key)
        mode = 0o444 if _immutable(key) else 0o644
        if if_absent:
            if not create_exclusive(path, data, mode=mode):
                raise PreconditionFailed(f"{key} already exists")
        else:
            if if_match is not None:
                current = self.info(key)
                if current is None or current.etag != if_match:
                    raise PreconditionFailed(f"{key} changed since it was read")
            atomic_write(path, data, mode=mode)
        return _identity(path.stat())

    def delete(self, key: str) -> int:
        path = self.local_path(key)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        fsync_dir(path.parent)
        return size

    def info(self, key: str) -> ObjectInfo | None:
        try:
            st = self.local_path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return ObjectInfo(key, st.st_size, st.st_mtime, _identity(st))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        for path in self._files(prefix, temporary=False):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            yield ObjectInfo(path.relative_to(self.root).as_posix(), st.st_size, st.st_mtime, _identity(st))

    def children(self, prefix: str) -> list[str]:
        base = self.local_path(prefix)
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir())

    def leftovers(self) -> Iterator[str]:
        for path in self._files("", temporary=True):
            yield path.relative_to(self.root).as_posix()

    def _files(self, prefix: str, *, temporary: bool) -> Iterator[Path]:
        """The files below ``prefix`` in a stable order: the temporary leftovers, or all others."""
        base = self.local_path(prefix)
        if not base.is_dir():
            return
        for directory, dirs, files in os.walk(base):
            dirs.sort()
            for name in sorted(files):
                if is_temp_leftover(Path(name)) == temporary:
                    yield Path(directory) / name

    def remove_prefix(self, prefix: str) -> None:
        path = self.local_path(prefix)
        shutil.rmtree(path, ignore_errors=True)
        if path.parent.is_dir():
            fsync_dir(path.parent)

    @contextlib.contextmanager
    def shared_lock(self) -> Iterator[None]:
        with file_lock(self.root / ".lock", shared=True):
            yield

    @contextlib.contextmanager
    def exclusive_lock(self) -> Iterator[None]:
        with file_lock(self.root / ".lock", shared=False):
            yield

    @contextlib.contextmanager
    def artifact_lock(self, name: str) -> Iterator[None]:
        with file_lock(self.root / "collections" / name / ".lock"):
            yield


def _immutable(key: str) -> bool:
    """Blobs and manifests never change once written: their files are made read-only."""
    return key.startswith("blobs/") or "/versions/" in key


def _identity(st: os.stat_result) -> str:
    return f"{st.st_ino}-{st.st_size}-{st.st_mtime_ns}"
