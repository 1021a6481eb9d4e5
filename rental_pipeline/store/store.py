"""The artifact store: the system of record for every versioned artifact of the pipeline.

W&B offline mode can log artifacts but never read them back, so the pipeline reads its inputs
from here and treats W&B as a mirror. Versions are immutable and content-addressed; a write whose
files have the digest of an existing version reuses it (as W&B does) instead of adding a copy.

Concurrency: writers, alias moves and flag changes take the store lock *shared* (so they run
side by side) and the artifact's lock *exclusively* around version numbering and alias moves;
``gc`` takes the store lock exclusively, so it never deletes a blob a writer is about to commit.
Readers take no lock: a version exists exactly when its manifest file does, and the manifest is
published only after all its blobs are durable.
"""

from __future__ import annotations

import builtins
import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any

from rental_pipeline.home import project_home

from . import codecs
from .aliases import (
    AliasGuard,
    AliasLog,
    AliasMove,
    aliases_of,
    default_actor,
    refuse_failed_checks,
    utc_now,
)
from .blobs import BlobStore
from .digest import artifact_digest, hash_bytes, hash_file, sha256_hex
from .errors import (
    ArtifactNotFoundError,
    ArtifactTypeError,
    CodecError,
    IntegrityError,
    InvalidNameError,
)
from .flags import FlagSidecar
from .fsutil import atomic_write, file_lock
from .layout import StoreLayout
from .manifest import FileEntry, VersionManifest, check_json_able, parse_manifest
from .names import (
    LATEST,
    Ref,
    parse_ref,
    validate_alias,
    validate_file_path,
    validate_name,
    validate_type,
    version_ref,
)

if TYPE_CHECKING:
    from .maintenance import GcReport, VerifyReport

RefLike = str | VersionManifest


def default_root() -> Path:
    """``artifacts`` under the project home (``$RENTAL_PIPELINE_HOME``, else ``.rental_pipeline``)."""
    return project_home() / "artifacts"


@dataclass(frozen=True)
class WriteResult:
    version: VersionManifest
    created: bool  # False when identical content reused an existing version


@dataclass(frozen=True)
class ArtifactSummary:
    name: str
    type: str
    versions: tuple[int, ...]
    aliases: Mapping[str, int] = field(default_factory=dict)

    @property
    def latest(self) -> int | None:
        return self.aliases.get(LATEST)


class ArtifactStore:
    """Versioned, content-addressed artifacts under one directory (see :mod:`.layout`)."""

    def __init__(self, root: Path | str, *, alias_guard: AliasGuard | None = None) -> None:
        self.root = Path(root)
        self.layout = StoreLayout(self.root)
        self.blobs = BlobStore(self.root)
        self.alias_guard: AliasGuard = alias_guard or refuse_failed_checks()
        # Parsed manifests, keyed by file identity: a write reads every manifest of its artifact
        # to find one with the same digest, and manifests never change once published.
        self._manifests: dict[tuple[str, int], tuple[tuple[int, int, int], VersionManifest]] = {}

    def __repr__(self) -> str:
        return f"ArtifactStore({str(self.root)!r})"

    # -- locks ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def pinned(self) -> Iterator[None]:
        """Keep ``gc`` out while held: blobs and versions seen inside stay where they are."""
        with file_lock(self.layout.store_lock, shared=True):
            yield

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        with file_lock(self.layout.store_lock, shared=False):
            yield

    @contextlib.contextmanager
    def _artifact_locked(self, name: str) -> Iterator[None]:
        with self.pinned(), file_lock(self.layout.artifact_lock(name)):
            yield

    # -- reading -------------------------------------------------------------------------

    def names(self) -> list[str]:
        return self.layout.names()

    def versions(self, name: str) -> list[int]:
        return self.layout.committed_versions(validate_name(name))

    def aliases(self, name: str) -> dict[str, int]:
        return self._current_aliases(name, AliasLog(self.layout.alias_log(validate_name(name))))

    def _current_aliases(self, name: str, log: AliasLog) -> dict[str, int]:
        """The replayed alias log, with `latest` on the newest version when the log has none yet.

        A writer killed between publishing its manifest (the commit) and logging the `latest`
        move leaves a whole version no alias names; for the very first version that would leave
        the artifact without `latest`, so `latest` falls back to the newest committed version.
        """
        aliases = log.current()
        if LATEST not in aliases:
            committed = self.layout.committed_versions(name)
            if committed:
                aliases[LATEST] = committed[-1]
        return aliases

    def alias_log(self, name: str) -> list[AliasMove]:
        """Every alias move of ``name``, oldest first: who moved which alias, when and why."""
        return AliasLog(self.layout.alias_log(validate_name(name))).moves()

    def list(self) -> list[ArtifactSummary]:
        summaries = []
        for name in self.names():
            versions = self.versions(name)
            try:
                artifact_type = self._read_manifest(name, versions[-1]).type
            except IntegrityError:
                artifact_type = "?"
            summaries.append(
                ArtifactSummary(name, artifact_type, tuple(versions), self.aliases(name))
            )
        return summaries

    def history(self, name: str) -> builtins.list[VersionManifest]:
        """All readable versions of ``name``, oldest first, with aliases and flags attached."""
        aliases = self.aliases(name)
        return [
            self._with_state(self._read_manifest(name, v), aliases) for v in self.versions(name)
        ]

    def get(self, ref: RefLike) -> VersionManifest:
        """Resolve ``name``, ``name:vN`` or ``name:alias`` to a committed version."""
        parsed = _parse(ref)
        aliases = self.aliases(parsed.name)
        version = self._resolve(parsed, aliases)
        return self._with_state(self._read_manifest(parsed.name, version), aliases)

    def exists(self, ref: RefLike) -> bool:
        try:
            self.get(ref)
        except ArtifactNotFoundError:
            return False
        return True

    def flags(self, ref: RefLike) -> dict[str, Any]:
        return dict(self.get(ref).flags)

    def used_by(self, ref: RefLike) -> builtins.list[str]:
        """Versions whose recorded inputs include ``ref`` (downstream lineage)."""
        target = self.get(ref).ref
        found = []
        for name in self.names():
            for version in self.versions(name):
                with contextlib.suppress(IntegrityError):
                    if target in self._read_manifest(name, version).inputs:
                        found.append(version_ref(name, version))
        return found

    def read_bytes(self, ref: RefLike, path: str) -> bytes:
        """The bytes of one file, checked against the manifest's sha256."""
        return self._verified_bytes(self.get(ref), path)

    def _verified_bytes(self, version: VersionManifest, path: str) -> bytes:
        entry = _entry(version, path)
        blob = self.blobs.path(entry.sha256)
        try:
            data = blob.read_bytes()
        except FileNotFoundError:
            raise _missing_blob(version, entry) from None
        actual = sha256_hex(data)
        if actual != entry.sha256:
            raise _tampered_blob(version, entry, actual)
        return data

    def paths(self, ref: RefLike) -> dict[str, Path]:
        """Local paths of every file of a version, each checked first; do not modify them."""
        version = self.get(ref)
        return {entry.path: self._checked_blob(version, entry) for entry in version.files}

    def open(self, ref: RefLike, path: str) -> IO[bytes]:
        """A binary file object for one file, after checking its sha256."""
        version = self.get(ref)
        return open(self._checked_blob(version, _entry(version, path)), "rb")

    def load(self, ref: RefLike) -> Any:
        """The stored object, decoded by the codec named in the version's ``format`` metadata."""
        version = self.get(ref)
        fmt = version.metadata.get(codecs.FORMAT_KEY)
        if not fmt:
            raise CodecError(
                f"{version.ref} records no {codecs.FORMAT_KEY!r} in its metadata, so there is no "
                "codec to decode it; read its files with read_bytes() or paths()"
            )
        codec = codecs.codec_named(str(fmt))
        return codec.decode(self._verified_bytes(version, codec.filename))

    # -- writing -------------------------------------------------------------------------

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
                    f"artifact {name!r} file {path!r}: expected bytes, got {type_name(data)}"
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
            with file_lock(self.layout.artifact_lock(name)):
                return self._commit(
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
    ) -> WriteResult:
        numbers = self.layout.committed_versions(name)
        existing = [m for m in (self._try_read_manifest(name, v) for v in numbers) if m is not None]
        if existing and existing[0].type != artifact_type:
            raise ArtifactTypeError(
                f"artifact {name!r} has type {existing[0].type!r}; refusing a version of type "
                f"{artifact_type!r} (use another name)"
            )
        log = AliasLog(self.layout.alias_log(name))
        aliases = log.current()
        same = next((m for m in reversed(existing) if m.digest == digest), None)
        if same is not None:
            if aliases.get(LATEST) != same.version:
                self._move(
                    log,
                    aliases,
                    LATEST,
                    same.version,
                    "identical content written again",
                    None,
                    run_id,
                )
            return WriteResult(self._with_state(same, aliases), created=False)

        number = numbers[-1] + 1 if numbers else 0
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
        # Publishing the manifest is the commit: its blobs are already durable.
        atomic_write(self.layout.manifest(name, number), manifest.to_bytes(), mode=0o444)
        self._move(log, aliases, LATEST, number, "new version", None, run_id)
        return WriteResult(self._with_state(manifest, aliases), created=True)

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

    # -- aliases and flags ---------------------------------------------------------------

    def set_alias(
        self,
        ref: RefLike,
        alias: str,
        *,
        reason: str = "",
        actor: str | None = None,
        force: bool = False,
    ) -> AliasMove | None:
        """Point ``alias`` at ``ref``; returns the logged move, or None if it was already there.

        The store's alias guard may refuse (e.g. ``prod`` on a version that failed checks);
        ``force=True`` overrides it and the move is logged as forced.
        """
        validate_alias(alias)
        if alias == LATEST:
            raise InvalidNameError("alias 'latest' is moved by writes only")
        parsed = _parse(ref)
        with self._artifact_locked(parsed.name):
            log = AliasLog(self.layout.alias_log(parsed.name))
            aliases = self._current_aliases(parsed.name, log)
            target = self._with_state(
                self._read_manifest(parsed.name, self._resolve(parsed, aliases)), aliases
            )
            if not force:
                self.alias_guard(target, alias)
            if aliases.get(alias) == target.version:
                return None
            return self._move(
                log, aliases, alias, target.version, reason, actor, None, forced=force
            )

    def remove_alias(
        self, name: str, alias: str, *, reason: str = "", actor: str | None = None
    ) -> AliasMove:
        validate_name(name)
        validate_alias(alias)
        if alias == LATEST:
            raise InvalidNameError("alias 'latest' is moved by writes only")
        with self._artifact_locked(name):
            log = AliasLog(self.layout.alias_log(name))
            aliases = log.current()
            if alias not in aliases:
                raise ArtifactNotFoundError(f"artifact {name!r} has no alias {alias!r}")
            return self._move(log, aliases, alias, None, reason, actor, None)

    def mark(self, ref: RefLike, key: str, value: Any) -> dict[str, Any]:
        """Set a flag on a version (``None`` removes it); returns all its flags."""
        with self._flags(ref, key) as sidecar:
            return sidecar.update({key: value})

    def mark_entries(self, ref: RefLike, key: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``changes`` into the dict held by flag ``key`` (``None`` removes an entry; the flag
        goes when its last entry does), all under the artifact lock. For a flag several writers
        share, such as ``failed_checks`` with one entry per check run in separate steps, where a
        read-then-:meth:`mark` could lose another writer's entry."""
        with self._flags(ref, key) as sidecar:
            current = sidecar.read().get(key)
            if isinstance(current, Mapping):
                entries = dict(current)
            else:  # a list of names (or nothing): keep each name as an entry
                entries = {str(name): True for name in current or ()} if isinstance(current, list) else {}
            for entry, value in changes.items():
                if value is None:
                    entries.pop(entry, None)
                else:
                    entries[entry] = value
            return sidecar.update({key: entries or None})

    @contextlib.contextmanager
    def _flags(self, ref: RefLike, key: str) -> Iterator[FlagSidecar]:
        """The flag sidecar of an existing version, held under its artifact lock."""
        if not isinstance(key, str) or not key:
            raise InvalidNameError(f"flag key must be a non-empty string, got {key!r}")
        parsed = _parse(ref)
        with self._artifact_locked(parsed.name):
            version = self._resolve(parsed, self.aliases(parsed.name))
            self._read_manifest(parsed.name, version)
            yield FlagSidecar(self.layout.flags(parsed.name, version))

    def _move(
        self,
        log: AliasLog,
        aliases: dict[str, int],
        alias: str,
        to_version: int | None,
        reason: str,
        actor: str | None,
        run_id: str | None,
        *,
        forced: bool = False,
    ) -> AliasMove:
        move = AliasMove(
            alias=alias,
            from_version=aliases.get(alias),
            to_version=to_version,
            at=utc_now(),
            actor=actor or default_actor(),
            reason=reason,
            run_id=run_id,
            forced=forced,
        )
        log.append(move)
        if to_version is None:
            aliases.pop(alias, None)
        else:
            aliases[alias] = to_version
        return move

    # -- maintenance ---------------------------------------------------------------------

    def verify(self) -> VerifyReport:
        """Check every version, blob, alias and pending run (a :class:`.VerifyReport`)."""
        from .maintenance import verify_store

        return verify_store(self)

    def gc(self, keep: int | None = None, *, dry_run: bool = False) -> GcReport:
        """Remove leftovers and orphan blobs; with ``keep``, also old unaliased versions."""
        from .maintenance import collect_garbage

        return collect_garbage(self, keep=keep, dry_run=dry_run)

    # -- internals -----------------------------------------------------------------------

    def _resolve(self, parsed: Ref, aliases: Mapping[str, int]) -> int:
        if parsed.version is not None:
            if not self.layout.manifest(parsed.name, parsed.version).exists():
                raise ArtifactNotFoundError(_not_found(self, parsed))
            return parsed.version
        assert parsed.alias is not None
        if parsed.alias not in aliases:
            raise ArtifactNotFoundError(_not_found(self, parsed))
        return aliases[parsed.alias]

    def _read_manifest(self, name: str, version: int) -> VersionManifest:
        ref = version_ref(name, version)
        path = self.layout.manifest(name, version)
        try:
            with open(path, "rb") as handle:
                st = os.fstat(handle.fileno())
                identity = (st.st_ino, st.st_size, st.st_mtime_ns)
                cached = self._manifests.get((name, version))
                if cached is not None and cached[0] == identity:
                    return cached[1]
                data = handle.read()
        except FileNotFoundError:
            raise ArtifactNotFoundError(f"{ref} does not exist in {self.root}") from None
        manifest = parse_manifest(data, source=ref)
        if (manifest.name, manifest.version) != (name, version):
            raise IntegrityError(f"manifest {ref} describes {manifest.ref} instead")
        self._manifests[(name, version)] = (identity, manifest)
        return manifest

    def _try_read_manifest(self, name: str, version: int) -> VersionManifest | None:
        try:
            return self._read_manifest(name, version)
        except (IntegrityError, ArtifactNotFoundError):
            return None

    def _with_state(self, manifest: VersionManifest, aliases: Mapping[str, int]) -> VersionManifest:
        flags = FlagSidecar(self.layout.flags(manifest.name, manifest.version)).read()
        return manifest.with_state(aliases_of(manifest.version, aliases), flags)

    def _checked_blob(self, version: VersionManifest, entry: FileEntry) -> Path:
        blob = self.blobs.path(entry.sha256)
        try:
            actual = hash_file(blob).sha256
        except FileNotFoundError:
            raise _missing_blob(version, entry) from None
        if actual != entry.sha256:
            raise _tampered_blob(version, entry, actual)
        return blob


def _parse(ref: RefLike) -> Ref:
    if isinstance(ref, VersionManifest):
        return Ref(ref.name, version=ref.version)
    return parse_ref(ref)


def _entry(version: VersionManifest, path: str) -> FileEntry:
    try:
        return version.file(path)
    except KeyError as exc:
        raise ArtifactNotFoundError(str(exc.args[0])) from None


def _not_found(store: ArtifactStore, parsed: Ref) -> str:
    versions = store.layout.committed_versions(parsed.name)
    if not versions:
        known = ", ".join(store.names()[:20]) or "none"
        return f"no artifact named {parsed.name!r} in {store.root} (artifacts: {known})"
    if parsed.version is not None:
        listed = ", ".join(f"v{v}" for v in versions)
        return f"{parsed} does not exist (versions: {listed})"
    aliases = ", ".join(sorted(store.aliases(parsed.name))) or "none"
    return f"{parsed.name!r} has no alias {parsed.alias!r} (aliases: {aliases})"


def _missing_blob(version: VersionManifest, entry: FileEntry) -> IntegrityError:
    return IntegrityError(
        f"{version.ref} file {entry.path!r}: its stored bytes (sha256 {entry.sha256[:16]}...) are "
        "missing from the store"
    )


def _tampered_blob(version: VersionManifest, entry: FileEntry, actual: str) -> IntegrityError:
    return IntegrityError(
        f"{version.ref} file {entry.path!r}: stored bytes were altered (sha256 {actual[:16]}..., "
        f"manifest says {entry.sha256[:16]}...); refusing to read them"
    )


def type_name(value: object) -> str:
    return type(value).__name__
