"""What a store root names, and where everything lives under it. One place, so the layout can be
read in one go. A root is a folder, or ``s3://bucket/prefix`` on object storage:

    <root>/
      .lock                                   store lock: writers share it, gc takes it alone
      blobs/sha256/<ab>/<sha256>              file contents, read-only, shared between versions
      collections/<name>/
        .lock                                 artifact lock: version numbers and alias moves
        versions/v<N>.json                    manifests; publishing one commits version N
        aliases.jsonl                         append-only alias moves; aliases are their fold
        flags/v<N>.json                       mutable flags of version N (e.g. failed checks)

Temporary files are named ``.tmp-*`` in the directory of the file they will replace. On object
storage the keys are the same below ``s3://bucket/prefix/``, with no locks and no temporary files
(see :mod:`.backend`); a cache of blobs stays on each machine, in the folder its caller gave
(``local_dir``: ``cache/blobs/sha256/...``), where the store's users may keep records of their own.
"""

from __future__ import annotations

import re
from pathlib import Path

from .backend import S3_SCHEME, Backend, LocalBackend, ObjectInfo
from .errors import InvalidNameError, StoreError
from .names import validate_name
from .s3_backend import S3Backend

_MANIFEST_RE = re.compile(r"v(0|[1-9][0-9]*)\.json")
COLLECTIONS = "collections/"


def open_backend(
    root: Path | str,
    *,
    local_dir: Path | str | None = None,
    s3_region: str | None = None,
    s3_endpoint_url: str | None = None,
) -> Backend:
    """The backend ``root`` names: ``s3://bucket/prefix[?endpoint_url=...&region=...]``, else a folder.

    A store on object storage keeps a cache of blobs on each machine, in ``local_dir``, which the
    caller chooses (a folder of its own per bucket and prefix); a folder is its own local folder.
    ``s3_region`` and ``s3_endpoint_url`` are used where the URL names none (see :class:`.S3Backend`).
    """
    if not (isinstance(root, str) and root.startswith(S3_SCHEME)):
        return LocalBackend(Path(root))
    backend = S3Backend.from_url(
        root,
        local_dir=Path(local_dir) if local_dir else None,
        default_region=s3_region,
        default_endpoint_url=s3_endpoint_url,
    )
    if local_dir is None:
        raise StoreError(
            f"store {backend.location}: a store on object storage needs local_dir, a folder on this machine "
            "for its cache of blobs"
        )
    return backend


class StoreLayout:
    """Keys of the store's objects, relative to its root (``/``-separated on every backend)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def collection(self, name: str) -> str:
        """Where an artifact's records are, as a user would look for them (path or s3:// URL)."""
        return self.backend.url(self.collection_key(name))

    def collection_key(self, name: str) -> str:
        return f"{COLLECTIONS}{validate_name(name)}"

    def versions_dir(self, name: str) -> str:
        return f"{self.collection_key(name)}/versions/"

    def manifest(self, name: str, version: int) -> str:
        return f"{self.versions_dir(name)}v{version}.json"

    def alias_log(self, name: str) -> str:
        return f"{self.collection_key(name)}/aliases.jsonl"

    def flags(self, name: str, version: int) -> str:
        return f"{self.collection_key(name)}/flags/v{version}.json"

    def committed_versions(self, name: str) -> list[int]:
        """Version numbers whose manifest was published, ascending."""
        return sorted(self.committed(name))

    def committed(self, name: str) -> dict[int, ObjectInfo]:
        """Published manifests by version number, with the ETag each was listed at."""
        prefix = self.versions_dir(name)
        found = {}
        for info in self.backend.list(prefix):
            match = _MANIFEST_RE.fullmatch(info.key[len(prefix) :])
            if match:
                found[int(match.group(1))] = info
        return dict(sorted(found.items()))

    def names(self) -> list[str]:
        """Artifacts with at least one committed version (a killed first write leaves none)."""
        found = []
        for name in self.backend.children(COLLECTIONS):
            try:
                if self.committed_versions(name):
                    found.append(name)
            except InvalidNameError:
                continue  # a folder someone else put here; not an artifact
        return sorted(found)
