"""Content digests, and blob storage addressed by them: each distinct file content is stored once.

The store names blobs by sha256 (collision resistant, what integrity checks rely on) and also
records, per file, the digest W&B computes (base64 of the md5), so that the artifact digest the
store reports is exactly the one W&B shows for the mirrored artifact. W&B's algorithm lives in
``wandb/sdk/artifacts/artifact_manifests/artifact_manifest_v1.py`` (``ArtifactManifestV1.digest``)
and ``wandb/sdk/lib/hashutil.py`` (``md5_file_b64``); a test compares against the real library.

Versions that share bytes (an unchanged test split, a retrained model identical to the last one)
share one blob. Blobs are written atomically and made read-only; since their name is their hash,
a damaged blob is detected on every read and healed by the next write of the same content.

Where the blobs are files on this machine (a folder store) they are read in place
(:class:`BlobStore`); elsewhere (object storage) through a checked copy on this machine
(:class:`CachedBlobStore`). :func:`blob_store` picks one by asking the backend for a local path.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .backend import Backend, ObjectInfo
from .fsutil import atomic_write

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
PREFIX = "blobs/sha256/"
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


def sha256_of_file(path: Path) -> str:
    """The sha256 of a file, streamed: about twice as fast as :func:`hash_file`, which computes
    W&B's md5 as well."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _sha256_of(path: Path) -> str | None:
    """:func:`sha256_of_file`, None if there is no such file."""
    try:
        return sha256_of_file(path)
    except FileNotFoundError:
        return None


def blob_store(backend: Backend) -> BlobStore:
    """The blobs of ``backend``: read in place where they are files here, else through a cache."""
    return BlobStore(backend) if backend.local_path(PREFIX) is not None else CachedBlobStore(backend)


class BlobStore:
    """``<root>/blobs/sha256/ab/abcdef...``: two-level fan-out keeps directories small.

    This class reads the blob files in place (a folder store); :class:`CachedBlobStore` keeps a
    checked copy of each blob on this machine instead.
    """

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
        path = self.backend.local_path(self.key(sha256))
        assert path is not None  # blob_store() gives a folder's backend to this class only
        return path

    def put(self, data: bytes, sha256: str | None = None) -> str:
        """Store ``data`` unless an intact copy exists; returns its sha256."""
        sha256 = sha256 or sha256_hex(data)
        if _sha256_of(self.path(sha256)) != sha256:
            self.backend.write(self.key(sha256), data)
        return sha256

    def altered(self, sha256: str, found: ObjectInfo) -> str | None:
        """Why the stored blob ``found`` (listed or HEADed just now) may not hold the bytes named
        ``sha256``, or None; for a blob that exists at its manifest's size.

        On a folder: its sha256, from reading the file (what loading it does anyway). Measured for
        a 50 MB blob in the page cache on 2 shared cores with sha256 in hardware: 35 ms at best,
        50-60 ms typical while other work runs; a cold disk adds its read time.
        """
        actual = _sha256_of(self.path(sha256))
        if actual is None:
            return "its stored bytes are missing"
        return None if actual == sha256 else f"its stored bytes were altered (sha256 {actual[:16]}...)"

    def read_checked(self, sha256: str) -> tuple[bytes, str]:
        """The blob's bytes and the sha256 they really have (the caller refuses a mismatch; the
        bytes are then not to be used); :class:`FileNotFoundError` if the blob is gone."""
        data = self.backend.read(self.key(sha256)).data
        return data, sha256_hex(data)

    def hashes(self, sha256: str) -> FileHashes:
        """Both digests of the stored bytes (streamed from the file: a blob need not fit in memory)."""
        return hash_file(self.path(sha256))

    def fetch(self, sha256: str) -> tuple[Path, str]:
        """A file on this machine with the blob's bytes, and the sha256 those bytes really have
        (the caller refuses a mismatch); :class:`FileNotFoundError` if the blob is gone."""
        path = self.path(sha256)
        return path, sha256_of_file(path)

    def stored(self) -> Iterator[ObjectInfo]:
        """Every committed blob with its size and time (temporary leftovers excluded)."""
        for info in self.backend.list(PREFIX):
            fan, _, name = info.key[len(PREFIX) :].partition("/")
            if _SHA256_RE.fullmatch(name) and name.startswith(fan):
                yield info

    def remove(self, sha256: str) -> int:
        """Delete one blob; returns the bytes freed."""
        return self.backend.delete(self.key(sha256))


class CachedBlobStore(BlobStore):
    """Blobs stored elsewhere (object storage), read through a cache on this machine: each cached
    copy is used only while the stored object keeps the ETag it had when this machine verified
    the bytes (``<sha256>.etag`` beside it), so damage in the bucket is refused even when the
    cached copy is intact."""

    def path(self, sha256: str) -> Path:
        return self.backend.local_dir / "cache" / self.key(sha256)

    def put(self, data: bytes, sha256: str | None = None) -> str:
        """Store ``data`` unless an intact copy exists; returns its sha256.

        An intact copy is recognised without downloading it: by the ETag this machine saw when it
        last wrote or checked those bytes, or by an ETag that proves them (see
        :meth:`.Backend.holds`: an MD5, what a plain single-part upload gets). Anything else is
        uploaded again, which is always safe. A copy older than a quarter of ``gc``'s grace period
        is touched, so ``gc`` leaves it alone while the caller goes on to reference it.
        """
        sha256 = sha256 or sha256_hex(data)
        key = self.key(sha256)
        found = self.backend.info(key)
        etag: str | None = None
        if found is not None and found.size == len(data):
            if found.etag == self._seen_etag(sha256) or self.backend.holds(found, data):
                etag = found.etag
                if time.time() - found.modified >= self.backend.default_grace_seconds / 4:
                    etag = self.backend.touch(key)  # None: removed between the two looks
        if etag is None:
            etag = self.backend.write(key, data)  # absent, damaged, or of unknown bytes
        # This machine's readers (the next step, a mirror) then find the bytes locally.
        self._cache(sha256, data, etag)
        return sha256

    def altered(self, sha256: str, found: ObjectInfo) -> str | None:
        """Nothing is downloaded: ``found``'s ETag must be the one the object had when this machine
        last verified its bytes (wrote them, or downloaded and hashed them; see :meth:`put`,
        :meth:`fetch`). Any other ETag counts as altered, even one a re-upload of the same bytes
        gave: where ETags are not MD5s (SSE-KMS), another machine's :meth:`put` of the same bytes
        re-uploads them, and the run cache here then makes them once more (its put records the new
        ETag). A blob this machine never wrote or read has no such record: then None, and only the
        size the caller compared is known.
        """
        seen = self._seen_etag(sha256)
        if seen is None or seen == found.etag:
            return None
        return (
            f"its stored bytes changed since this machine verified them (ETag {found.etag}, "
            f"verified under {seen})"
        )

    def read_checked(self, sha256: str) -> tuple[bytes, str]:
        path, actual = self.fetch(sha256)
        return (path.read_bytes() if actual == sha256 else b""), actual

    def hashes(self, sha256: str) -> FileHashes:
        return hash_bytes(self.backend.read(self.key(sha256)).data)

    def fetch(self, sha256: str) -> tuple[Path, str]:
        """The cached copy while the stored object keeps the ETag it had when this machine last
        verified it (one HEAD request); otherwise the bytes are downloaded and cached again only if
        they are the right ones. So a replaced object is noticed even when the cached copy is
        intact, and a damaged cached copy is replaced.
        """
        path = self.path(sha256)
        key = self.key(sha256)
        remote = self.backend.info(key)
        if remote is None:
            raise FileNotFoundError(self.backend.url(key))
        if path.exists() and self._seen_etag(sha256) == remote.etag:
            actual = sha256_of_file(path)
            if actual == sha256:
                return path, actual
        stored = self.backend.read(key)
        actual = sha256_hex(stored.data)
        if actual == sha256:
            self._cache(sha256, stored.data, stored.etag, replace=True)
        return path, actual

    def _seen_path(self, sha256: str) -> Path:
        return self.path(sha256).with_name(f"{sha256}.etag")

    def _seen_etag(self, sha256: str) -> str | None:
        try:
            return self._seen_path(sha256).read_text(encoding="ascii")
        except FileNotFoundError:
            return None

    def _cache(self, sha256: str, data: bytes, etag: str, *, replace: bool = False) -> None:
        """Keep verified bytes on this machine, with the ETag the stored object had then."""
        path = self.path(sha256)
        if replace or not path.exists():
            atomic_write(path, data, mode=0o444)
        if self._seen_etag(sha256) != etag:
            atomic_write(self._seen_path(sha256), etag.encode("ascii"))
