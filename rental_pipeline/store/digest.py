"""Content digests: sha256 for the store's own integrity, and W&B's md5-based artifact digest.

The store addresses blobs by sha256 (collision resistant, what integrity checks rely on) and also
records, per file, the digest W&B computes (base64 of the md5), so that the artifact digest the
store reports is exactly the one W&B shows for the mirrored artifact. W&B's algorithm lives in
``wandb/sdk/artifacts/artifact_manifests/artifact_manifest_v1.py`` (``ArtifactManifestV1.digest``)
and ``wandb/sdk/lib/hashutil.py`` (``md5_file_b64``); a test compares against the real library.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

WANDB_MANIFEST_HEADER = b"wandb-artifact-manifest-v1\n"
_CHUNK = 1 << 20


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry_digest(data: bytes) -> str:
    """W&B's per-file digest: base64 of the md5 of the bytes."""
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode("ascii")


def artifact_digest(entries: Iterable[tuple[str, str]]) -> str:
    """W&B's artifact digest from ``(path, entry_digest)`` pairs, in any order."""
    hasher = hashlib.md5(WANDB_MANIFEST_HEADER, usedforsecurity=False)
    for path, digest in sorted(entries):
        hasher.update(f"{path}:{digest}\n".encode())
    return hasher.hexdigest()


@dataclass(frozen=True)
class FileHashes:
    sha256: str
    entry_digest: str
    size: int


def hash_bytes(data: bytes) -> FileHashes:
    return FileHashes(sha256_hex(data), entry_digest(data), len(data))


def hash_file(path: Path) -> FileHashes:
    """Both digests of a file in one streaming pass, so large models need not fit in memory."""
    sha = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return FileHashes(sha.hexdigest(), base64.b64encode(md5.digest()).decode("ascii"), size)
