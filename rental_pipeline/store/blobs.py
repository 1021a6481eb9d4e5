"""Content-addressed blob storage: each distinct file content is stored once, named by sha256.

Versions that share bytes (an unchanged test split, a retrained model identical to the last one)
share one blob. Blobs are written atomically and made read-only; since their name is their hash,
a damaged blob is detected on every read and healed by the next write of the same content.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

from .backend import Backend, LocalBackend, ObjectInfo
from .digest import hash_file, sha256_hex
from .fsutil import atomic_write

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
PREFIX = "blobs/sha256/"


class BlobStore:
    """``<root>/blobs/sha256/ab/abcdef...``: two-level fan-out keeps directories small."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.root = backend.local_dir / "blobs" / "sha256"  # on a local store, where the files are

    @staticmethod
    def key(sha256: str) -> str:
        if not _SHA256_RE.fullmatch(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return f"{PREFIX}{sha256[:2]}/{sha256}"

    def path(self, sha256: str) -> Path:
        """The blob's file on this machine: the store's own file, or its cached copy."""
        key = self.key(sha256)
        if isinstance(self.backend, LocalBackend):
            return self.backend.path(key)
        return self.backend.local_dir / "cache" / key

    def put(self, data: bytes, sha256: str | None = None) -> str:
        """Store ``data`` unless an intact copy exists; returns its sha256.

        On object storage an intact copy is recognised by its ETag (the MD5 of its bytes) without
        downloading it; one older than a quarter of ``gc``'s grace period is touched so ``gc``
        leaves it alone while the caller goes on to reference it.
        """
        sha256 = sha256 or sha256_hex(data)
        key = self.key(sha256)
        if isinstance(self.backend, LocalBackend):
            if self.intact(sha256):
                return sha256
            self.backend.write(key, data)
            return sha256
        from .s3_backend import etag_is_md5, md5_hex

        found = self.backend.info(key)
        reusable = found is not None and found.size == len(data) and etag_is_md5(found.etag, md5_hex(data))
        grace = self.backend.default_grace_seconds
        if not (reusable and (time.time() - found.modified < grace / 4 or self.backend.touch(key))):
            self.backend.write(key, data)  # absent, damaged, or removed between the two looks
        # This machine's readers (the next step, the W&B worker) then find the bytes locally.
        cached = self.path(sha256)
        if not cached.exists():
            atomic_write(cached, data, mode=0o444)
        return sha256

    def intact(self, sha256: str) -> bool:
        try:
            return hash_file(self.path(sha256)).sha256 == sha256
        except FileNotFoundError:
            return False

    def read(self, sha256: str) -> bytes:
        """The stored bytes, unchecked (callers compare them with the manifest's sha256)."""
        return self.backend.read(self.key(sha256)).data

    def local_file(self, sha256: str, *, refresh: bool = False) -> Path:
        """A file on this machine holding the blob; ``refresh`` fetches it again (object storage)."""
        key = self.key(sha256)
        if refresh and not isinstance(self.backend, LocalBackend):
            from .s3_backend import S3Backend

            assert isinstance(self.backend, S3Backend)
            return self.backend.refresh_local(key)
        return self.backend.local_file(key)

    def stored(self) -> Iterator[ObjectInfo]:
        """Every committed blob with its size and time (temporary leftovers excluded)."""
        for info in self.backend.list(PREFIX):
            fan, _, name = info.key[len(PREFIX) :].partition("/")
            if _SHA256_RE.fullmatch(name) and name.startswith(fan):
                yield info

    def all(self) -> Iterator[str]:
        for info in self.stored():
            yield info.key.rsplit("/", 1)[-1]

    def remove(self, sha256: str) -> int:
        """Delete one blob; returns the bytes freed."""
        return self.backend.delete(self.key(sha256))
