"""Content-addressed blob storage: each distinct file content is stored once, named by sha256.

Versions that share bytes (an unchanged test split, a retrained model identical to the last one)
share one blob. Blobs are written atomically and made read-only; since their name is their hash,
a damaged blob is detected on every read and healed by the next write of the same content.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from .digest import hash_file, sha256_hex
from .fsutil import atomic_write, fsync_dir, is_temp_leftover

_SHA256_RE = re.compile(r"[0-9a-f]{64}")


class BlobStore:
    """``<root>/blobs/sha256/ab/abcdef...``: two-level fan-out keeps directories small."""

    def __init__(self, root: Path) -> None:
        self.root = root / "blobs" / "sha256"

    def path(self, sha256: str) -> Path:
        if not _SHA256_RE.fullmatch(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes, sha256: str | None = None) -> str:
        """Store ``data`` unless an intact copy exists; returns its sha256."""
        sha256 = sha256 or sha256_hex(data)
        target = self.path(sha256)
        if target.exists() and self.intact(sha256):
            return sha256
        atomic_write(target, data, mode=0o444)
        return sha256

    def intact(self, sha256: str) -> bool:
        try:
            return hash_file(self.path(sha256)).sha256 == sha256
        except FileNotFoundError:
            return False

    def all(self) -> Iterator[str]:
        """Every committed blob (temporary leftovers excluded)."""
        if not self.root.is_dir():
            return
        for fan in sorted(self.root.iterdir()):
            if not fan.is_dir():
                continue
            for blob in sorted(fan.iterdir()):
                if _SHA256_RE.fullmatch(blob.name) and blob.name.startswith(fan.name):
                    yield blob.name

    def remove(self, sha256: str) -> int:
        """Delete one blob; returns the bytes freed."""
        target = self.path(sha256)
        try:
            size = target.stat().st_size
            target.unlink()
        except FileNotFoundError:
            return 0
        fsync_dir(target.parent)
        return size

    def temp_leftovers(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for fan in self.root.iterdir():
            if fan.is_dir():
                yield from (p for p in fan.iterdir() if is_temp_leftover(p))


def remove_file(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    fsync_dir(path.parent)
