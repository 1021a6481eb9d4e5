"""The version manifest: the immutable record of one artifact version, and its JSON form.

A manifest names every file (with both the W&B entry digest and the sha256 the store verifies
reads against), the W&B artifact digest, and the provenance a reviewer asks about: which run and
code version made it, when, and from exactly which input versions. Publishing the manifest file
is what commits a version; nothing in it changes afterwards. Aliases and flags change, so they
live elsewhere and are only attached to the in-memory object for convenience.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from .blobs import artifact_digest
from .errors import IntegrityError
from .names import Ref, parse_ref, validate_file_path, validate_name, validate_type, version_ref

MANIFEST_FORMAT = "rental_pipeline.store/manifest-v1"


@dataclass(frozen=True)
class FileEntry:
    """One file of a version: its path inside the artifact and its digests."""

    path: str
    digest: str  # W&B entry digest, base64(md5(bytes))
    sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "digest": self.digest, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class VersionManifest:
    """One committed version of an artifact.

    ``aliases`` and ``flags`` are a snapshot taken when the version was read: they are not part
    of the immutable record and are not written with it.
    """

    name: str
    version: int
    type: str
    digest: str
    files: tuple[FileEntry, ...]
    created_at: str
    description: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    code_version: str | None = None
    inputs: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    flags: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return version_ref(self.name, self.version)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, path: str) -> FileEntry:
        for entry in self.files:
            if entry.path == path:
                return entry
        known = ", ".join(e.path for e in self.files) or "none"
        raise KeyError(f"{self.ref} has no file {path!r} (files: {known})")

    def to_json(self) -> dict[str, Any]:
        """The persisted form: everything except the mutable alias and flag snapshots."""
        return {
            "format": MANIFEST_FORMAT,
            "name": self.name,
            "version": self.version,
            "type": self.type,
            "digest": self.digest,
            "files": [f.to_json() for f in self.files],
            "created_at": self.created_at,
            "description": self.description,
            "metadata": dict(self.metadata),
            "run_id": self.run_id,
            "code_version": self.code_version,
            "inputs": list(self.inputs),
        }

    def to_bytes(self) -> bytes:
        return dumps_json(self.to_json())

    def with_state(self, aliases: tuple[str, ...], flags: Mapping[str, Any]) -> VersionManifest:
        return replace(self, aliases=aliases, flags=MappingProxyType(dict(flags)))


RefLike = str | VersionManifest  # what the store's methods accept as a reference


def ref_of(ref: RefLike) -> Ref:
    """The reference ``ref`` is: a version as given, or ``name``, ``name:vN``, ``name:alias`` parsed."""
    if isinstance(ref, VersionManifest):
        return Ref(ref.name, version=ref.version)
    return parse_ref(ref)


def dumps_json(value: Any) -> bytes:
    """Canonical JSON for store records: sorted keys, indented, strict (no NaN), newline-ended."""
    return (json.dumps(value, sort_keys=True, indent=2, allow_nan=False) + "\n").encode("utf-8")


def check_json_able(value: Any, what: str) -> None:
    """Refuse values JSON cannot carry faithfully, naming the offending key."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{what} must be plain JSON (str, numbers, lists, dicts; no NaN): {exc}"
        ) from exc


def parse_manifest(data: bytes, *, source: str) -> VersionManifest:
    """Parse and check a manifest; any damage is an :class:`IntegrityError` naming ``source``."""
    try:
        raw = json.loads(data)
        if raw.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"unknown manifest format {raw.get('format')!r}")
        files = tuple(
            FileEntry(
                path=validate_file_path(f["path"]),
                digest=str(f["digest"]),
                sha256=str(f["sha256"]),
                size=int(f["size"]),
            )
            for f in raw["files"]
        )
        manifest = VersionManifest(
            name=validate_name(raw["name"]),
            version=int(raw["version"]),
            type=validate_type(raw["type"]),
            digest=str(raw["digest"]),
            files=files,
            created_at=str(raw["created_at"]),
            description=str(raw.get("description") or ""),
            metadata=MappingProxyType(dict(raw.get("metadata") or {})),
            run_id=raw.get("run_id"),
            code_version=raw.get("code_version"),
            inputs=tuple(str(i) for i in raw.get("inputs") or ()),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IntegrityError(f"manifest {source} is unreadable: {exc}") from exc
    recomputed = artifact_digest((f.path, f.digest) for f in manifest.files)
    if recomputed != manifest.digest:
        raise IntegrityError(
            f"manifest {source} is inconsistent: its files give digest {recomputed}, "
            f"it records {manifest.digest}"
        )
    return manifest
