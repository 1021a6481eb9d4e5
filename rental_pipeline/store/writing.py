"""Writing a version: its blobs first, then its manifest (which commits it), then ``latest``.

A version number is claimed by *creating* its manifest, refused if another writer got there
first (then the next number is tried); content equal to an existing version's reuses it. On a
folder the writer holds the store lock shared and the artifact's lock (see :mod:`.backend`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from . import codecs
from .aliases import AliasMove, utc_now
from .backend import retrying
from .digest import artifact_digest, hash_bytes
from .errors import ArtifactTypeError
from .manifest import FileEntry, RefLike, VersionManifest, check_json_able
from .names import LATEST, validate_file_path, validate_name, validate_type


@dataclass(frozen=True)
class WriteResult:
    version: VersionManifest
    created: bool  # False when identical content reused an existing version


class Writing:
    """How :class:`.ArtifactStore` writes (a part of it: it uses the store's locks, layout, blobs,
    alias log and listeners)."""

    def write(
        self,
        name: str,
        files: Mapping[str, bytes],
        *,
        type: str,  # noqa: A002 - the W&B term
        description: str = "",
        metadata: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        code_version: str | None = None,
        inputs: Iterable[RefLike] = (),
    ) -> WriteResult:
        """Commit ``files`` as the next version of ``name``, or reuse one with the same digest.

        ``inputs`` may use aliases; they are recorded as the exact ``name:vN`` they resolve to,
        so the lineage says which bytes the new version was made from. Like W&B, content equal to
        *any* existing version reuses it (``created=False``): its committed record (metadata,
        run id, inputs) stays as it was, and only ``latest`` moves to it.
        """
        validate_name(name)
        validate_type(type)
        if not files:
            raise ValueError(f"artifact {name!r}: a version needs at least one file")
        metadata = dict(metadata or {})
        check_json_able(metadata, f"metadata of {name!r}")
        payload: list[tuple[FileEntry, bytes]] = []
        for path in sorted(files):
            data = files[path]
            validate_file_path(path)
            if not isinstance(data, bytes | bytearray | memoryview):
                raise TypeError(
                    f"artifact {name!r} file {path!r}: expected bytes, got {_type_name(data)}"
                )
            data = bytes(data)
            hashes = hash_bytes(data)
            payload.append((FileEntry(path, hashes.entry_digest, hashes.sha256, hashes.size), data))
        entries = tuple(entry for entry, _ in payload)
        digest = artifact_digest((e.path, e.digest) for e in entries)

        with self.pinned():
            input_refs = tuple(dict.fromkeys(self.get(i).ref for i in inputs))
            for entry, data in payload:
                self.blobs.put(data, entry.sha256)
            with self.backend.artifact_lock(name):
                result, moved = self._commit(
                    name,
                    entries,
                    digest,
                    type,
                    description,
                    metadata,
                    run_id,
                    code_version,
                    input_refs,
                )
        self.listeners.tell("version_saved", result.version, result.created)
        if moved is not None:
            self.listeners.tell("alias_moved", name, moved)
        return result

    def _commit(
        self,
        name: str,
        entries: tuple[FileEntry, ...],
        digest: str,
        artifact_type: str,
        description: str,
        metadata: dict[str, Any],
        run_id: str | None,
        code_version: str | None,
        inputs: tuple[str, ...],
    ) -> tuple[WriteResult, AliasMove | None]:
        def publish() -> tuple[VersionManifest, bool]:
            """Reuse a version with this digest, or create the next one (create-only)."""
            listed = self.layout.committed(name)
            existing = [
                m for m in (self.try_read_manifest(name, v, info) for v, info in listed.items()) if m is not None
            ]
            if existing and existing[0].type != artifact_type:
                raise ArtifactTypeError(
                    f"artifact {name!r} has type {existing[0].type!r}; refusing a version of type "
                    f"{artifact_type!r} (use another name)"
                )
            same = next((m for m in reversed(existing) if m.digest == digest), None)
            if same is not None:
                return same, False
            number = max(listed) + 1 if listed else 0
            manifest = VersionManifest(
                name=name,
                version=number,
                type=artifact_type,
                digest=digest,
                files=entries,
                created_at=utc_now(),
                description=description,
                metadata=MappingProxyType(metadata),
                run_id=run_id,
                code_version=code_version,
                inputs=inputs,
            )
            # Publishing the manifest is the commit: its blobs are already durable. Creating it
            # fails if another writer took this number first; then the next number is tried.
            self.backend.write(self.layout.manifest(name, number), manifest.to_bytes(), if_absent=True)
            return manifest, True

        manifest, created = retrying(publish)

        def move_latest() -> tuple[dict[str, int], AliasMove | None]:
            log = self._alias_log(name)
            aliases = log.current()
            if aliases.get(LATEST) == manifest.version:
                return aliases, None
            reason = "new version" if created else "identical content written again"
            return aliases, self._move(log, aliases, LATEST, manifest.version, reason, None, run_id)

        aliases, moved = retrying(move_latest)
        return WriteResult(self._with_state(manifest, aliases), created=created), moved

    def save(
        self,
        name: str,
        obj: Any,
        *,
        type: str,  # noqa: A002 - the W&B term
        description: str = "",
        metadata: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        code_version: str | None = None,
        inputs: Iterable[RefLike] = (),
    ) -> WriteResult:
        """Encode ``obj`` with its codec (frame, model, dict) and :meth:`write` it."""
        codec = codecs.codec_for(obj)
        metadata = dict(metadata or {})
        if metadata.setdefault(codecs.FORMAT_KEY, codec.format) != codec.format:
            raise ValueError(
                f"metadata key {codecs.FORMAT_KEY!r} is reserved for the codec ({codec.format!r})"
            )
        return self.write(
            name,
            {codec.filename: codec.encode(obj)},
            type=type,
            description=description,
            metadata=metadata,
            run_id=run_id,
            code_version=code_version,
            inputs=inputs,
        )


def _type_name(value: object) -> str:
    return type(value).__name__
