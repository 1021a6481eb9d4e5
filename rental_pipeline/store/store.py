"""The artifact store: the system of record for every versioned artifact of the pipeline.

W&B offline mode can log artifacts but never read them back, so the pipeline reads its inputs
from here and treats W&B as a mirror. Versions are immutable and content-addressed; a write whose
files have the digest of an existing version reuses it (as W&B does) instead of adding a copy.

The root is a folder or ``s3://bucket/prefix`` (:mod:`.backend`, :mod:`.s3_backend`); the
algorithm is the same on both. A version number is claimed by *creating* its manifest (refused
if another writer got there first: take the next number); alias moves and flag changes replace
their record only if it is still what was read (compare-and-swap), else re-read and retry.

Concurrency on a folder: writers, alias moves and flag changes also take the store lock *shared*
and the artifact's lock *exclusively*; ``gc`` takes the store lock exclusively, so it never deletes
a blob a writer is about to commit. Object storage has no locks: there ``gc`` only removes blobs
nothing referenced for a grace period. Readers take no lock: a version exists exactly when its
manifest does, and the manifest is published only after all its blobs are durable.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import numbers
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from . import codecs
from .aliases import (
    ANY_TARGET,
    AliasLog,
    AliasMove,
    AnyTarget,
    aliases_of,
    check_expected,
    default_actor,
    refuse_failed_checks,
    utc_now,
)
from .backend import Backend, ObjectInfo, PreconditionFailed, Stored
from .blobs import blob_store
from .digest import artifact_digest, hash_bytes
from .errors import (
    ArtifactNotFoundError,
    ArtifactTypeError,
    CodecError,
    IntegrityError,
    InvalidNameError,
)
from .events import Listeners
from .layout import StoreLayout
from .manifest import FileEntry, VersionManifest, check_json_able, dumps_json, parse_manifest
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
from .roots import open_backend

RefLike = str | VersionManifest
T = TypeVar("T")
# Conditional writes that lose to another writer are retried on fresh state; this many at most.
MAX_ATTEMPTS = 200


def _retrying(attempt: Callable[[], T]) -> T:
    """Run ``attempt`` until no conditional write in it loses to another writer."""
    for number in range(MAX_ATTEMPTS):
        try:
            return attempt()
        except PreconditionFailed:
            time.sleep(random.uniform(0, min(0.002 * (number + 1), 0.05)))
    raise PreconditionFailed(f"gave up after {MAX_ATTEMPTS} attempts: other writers kept changing the same records")


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
    """Versioned, content-addressed artifacts under one root (see :mod:`.layout`).

    ``root`` is a folder or ``s3://bucket/prefix[?endpoint_url=...&region=...]``. ``self.root`` is
    always a folder on this machine: the store itself, or for object storage ``local_dir``, the
    folder of this machine's cached files (required there; its users may keep their own records
    in it too); ``self.location`` is the root as given. ``protected_aliases`` stay off versions
    flagged as having failed checks (:func:`.refuse_failed_checks`). ``listeners`` are told of
    each committed write, alias move and flag change (:mod:`.events`; :meth:`subscribe` adds one).
    """

    def __init__(
        self,
        root: Path | str,
        *,
        local_dir: Path | str | None = None,
        protected_aliases: Iterable[str] = (),
        listeners: Iterable[object] = (),
    ) -> None:
        self.protected_aliases = tuple(protected_aliases)
        self.listeners = Listeners(listeners)
        self.backend: Backend = open_backend(root, local_dir=local_dir)
        self.root = self.backend.local_dir
        self.location = self.backend.location
        self.layout = StoreLayout(self.backend)
        self.blobs = blob_store(self.backend)
        # Parsed manifests by ETag: a write reads every manifest of its artifact to find one
        # with the same digest, and manifests never change once published.
        self._manifests: dict[tuple[str, int], tuple[str, VersionManifest]] = {}

    def __repr__(self) -> str:
        return f"ArtifactStore({self.location!r})"

    def subscribe(self, listener: object) -> None:
        """Tell ``listener`` of what this store commits from now on (see :mod:`.events`)."""
        self.listeners.subscribe(listener)

    def unsubscribe(self, listener: object) -> None:
        self.listeners.unsubscribe(listener)

    # -- locks ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def pinned(self) -> Iterator[None]:
        """Keep ``gc`` out while held: blobs and versions seen inside stay where they are (on
        object storage, ``gc``'s grace period does this instead)."""
        with self.backend.shared_lock():
            yield

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Keep every writer, alias move and flag change out while held (what ``gc`` needs before
        it deletes anything); on object storage there is no lock and this holds nothing."""
        with self.backend.exclusive_lock():
            yield

    @contextlib.contextmanager
    def _artifact_locked(self, name: str) -> Iterator[None]:
        """Locks for changing an existing artifact (aliases, flags). An artifact that does not exist
        is refused first: taking its lock would create its folder (and the store's), leaving a
        trace of a command that did nothing."""
        if not self.layout.committed_versions(validate_name(name)):
            raise ArtifactNotFoundError(_not_found(self, Ref(name, alias=LATEST)))
        with self.pinned(), self.backend.artifact_lock(name):
            yield

    # -- reading -------------------------------------------------------------------------

    def names(self) -> list[str]:
        return self.layout.names()

    def versions(self, name: str) -> list[int]:
        return self.layout.committed_versions(validate_name(name))

    def aliases(self, name: str) -> dict[str, int]:
        return self._current_aliases(name, self._alias_log(validate_name(name)))

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
        return self._alias_log(validate_name(name)).moves()

    def read_manifest(self, name: str, version: int, listed: ObjectInfo | None = None) -> VersionManifest:
        """Version ``version``'s committed record, without its aliases and flags; an unreadable one
        is an :class:`IntegrityError`. Re-read only when its ETag changed (``listed``, the object as
        :meth:`.StoreLayout.committed` listed it, saves the request)."""
        ref = version_ref(name, version)
        cached = self._manifests.get((name, version))
        if cached is not None and listed is not None and listed.etag == cached[0]:
            return cached[1]
        try:
            stored = self.backend.read_if_changed(
                self.layout.manifest(name, version), cached[0] if cached else None
            )
        except FileNotFoundError:
            raise ArtifactNotFoundError(f"{ref} does not exist in {self.location}") from None
        if stored is None:
            assert cached is not None
            return cached[1]
        manifest = parse_manifest(stored.data, source=ref)
        if (manifest.name, manifest.version) != (name, version):
            raise IntegrityError(f"manifest {ref} describes {manifest.ref} instead")
        self._manifests[(name, version)] = (stored.etag, manifest)
        return manifest

    def try_read_manifest(
        self, name: str, version: int, listed: ObjectInfo | None = None
    ) -> VersionManifest | None:
        """:meth:`read_manifest`, or None where it is unreadable or gone."""
        try:
            return self.read_manifest(name, version, listed)
        except (IntegrityError, ArtifactNotFoundError):
            return None

    def read_flags(self, name: str, version: int) -> dict[str, Any]:
        """Version ``version``'s flags as stored; an unreadable flags file is an :class:`IntegrityError`."""
        return self._flag_sidecar(name, version).read()

    def alias_problems(self, name: str) -> builtins.list[str]:
        """The lines of ``name``'s alias log that cannot be read (any one makes :meth:`aliases` fail)."""
        return self._alias_log(validate_name(name)).problems()

    def list(self) -> list[ArtifactSummary]:
        summaries = []
        for name in self.names():
            versions = self.versions(name)
            try:
                artifact_type = self.read_manifest(name, versions[-1]).type
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
            self._with_state(self.read_manifest(name, v), aliases) for v in self.versions(name)
        ]

    def get(self, ref: RefLike) -> VersionManifest:
        """Resolve ``name``, ``name:vN`` or ``name:alias`` to a committed version."""
        parsed = _parse(ref)
        aliases = self.aliases(parsed.name)
        version = self._resolve(parsed, aliases)
        return self._with_state(self.read_manifest(parsed.name, version), aliases)

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
                    if target in self.read_manifest(name, version).inputs:
                        found.append(version_ref(name, version))
        return found

    def read_bytes(self, ref: RefLike, path: str) -> bytes:
        """The bytes of one file, checked against the manifest's sha256.

        On object storage they come from this machine's cache of blobs (filled on first read or
        by a write from this machine), used only while the stored object keeps the ETag it had
        when the cached bytes were verified, so damage in the bucket is refused even when the
        cached copy is intact."""
        return self._verified_bytes(self.get(ref), path)

    def _verified_bytes(self, version: VersionManifest, path: str) -> bytes:
        entry = _entry(version, path)
        try:
            data, actual = self.blobs.read_checked(entry.sha256)
        except FileNotFoundError:
            raise _missing_blob(version, entry) from None
        if actual != entry.sha256:
            raise _tampered_blob(version, entry, actual)
        return data

    def paths(self, ref: RefLike) -> dict[str, Path]:
        """Local paths of every file of a version, each checked first; do not modify them.

        On object storage these are this machine's cached copies, fetched when missing."""
        version = self.get(ref)
        return {entry.path: self._checked_blob(version, entry) for entry in version.files}

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

    def blob_problems(self, ref: RefLike, *, deep: bool = False) -> builtins.list[str]:
        """What is wrong with the stored bytes of a version's files, found without downloading
        them: each blob must exist with the size its manifest gives (a stat on a folder, a HEAD
        request on object storage). Empty when nothing is found.

        ``deep`` also catches bytes altered at the same size, as :meth:`.BlobStore.altered` says:
        on a folder each blob is hashed (reading local files, as loading them would; 35-60 ms for
        a 50 MB blob here); on object storage the HEAD's ETag must be the one this machine last
        verified the bytes under. With no such record (a blob this machine never wrote or read)
        only the size is checked there; every read still refuses altered bytes.

        For reusing a version instead of making it again (the run cache, through :meth:`intact`):
        a version whose bytes are gone or altered would be handed out only to fail where it is
        read, on every later run, whereas making it again writes them back.
        """
        version = ref if isinstance(ref, VersionManifest) else self.get(ref)
        problems = []
        for entry in version.files:
            found = self.backend.info(self.blobs.key(entry.sha256))
            if found is None:
                problems.append(f"{version.ref} file {entry.path!r}: its stored bytes are missing")
            elif found.size != entry.size:
                problems.append(
                    f"{version.ref} file {entry.path!r}: its stored bytes are {found.size} bytes long, "
                    f"the manifest says {entry.size}"
                )
            elif deep and (altered := self.blobs.altered(entry.sha256, found)):
                problems.append(f"{version.ref} file {entry.path!r}: {altered}")
        return problems

    def intact(self, ref: RefLike) -> bool:
        """Whether every file of a version is stored with the bytes its manifest names, as far as
        :meth:`blob_problems` with ``deep`` can tell without downloading anything."""
        return not self.blob_problems(ref, deep=True)

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

        manifest, created = _retrying(publish)

        def move_latest() -> tuple[dict[str, int], AliasMove | None]:
            log = self._alias_log(name)
            aliases = log.current()
            if aliases.get(LATEST) == manifest.version:
                return aliases, None
            reason = "new version" if created else "identical content written again"
            return aliases, self._move(log, aliases, LATEST, manifest.version, reason, None, run_id)

        aliases, moved = _retrying(move_latest)
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

    # -- aliases and flags ---------------------------------------------------------------

    def set_alias(
        self,
        ref: RefLike,
        alias: str,
        *,
        reason: str = "",
        actor: str | None = None,
        force: bool = False,
        expected: int | None | AnyTarget = ANY_TARGET,
    ) -> AliasMove | None:
        """Point ``alias`` at ``ref``; returns the logged move, or None if it was already there.

        The store's ``protected_aliases`` are refused on a version that failed checks
        (:func:`.refuse_failed_checks`); ``force=True`` overrides that and the move is logged as forced.

        ``expected`` is the version the caller saw the alias on when it decided to move it (None:
        it saw no such alias). Two evaluations that both beat the old ``prod`` must not both move
        it, the later one unaware of the earlier, so if the alias is elsewhere by the time the move
        is committed (checked on every retry, on the log the append is conditional on) this raises
        :class:`AliasConflictError` and moves nothing, even if the alias already is on ``ref``:
        the caller's comparison was against another version. Left out, the move is unconditional.
        """
        validate_alias(alias)
        if alias == LATEST:
            raise InvalidNameError("alias 'latest' is moved by writes only")
        if isinstance(expected, bool) or not (
            expected is ANY_TARGET or expected is None or isinstance(expected, numbers.Integral)
        ):
            raise TypeError(f"expected must be a version number or None, got {expected!r}")
        if isinstance(expected, numbers.Integral):
            expected = int(expected)  # a numpy integer read from a frame, say
        parsed = _parse(ref)

        def attempt() -> AliasMove | None:
            log = self._alias_log(parsed.name)
            aliases = self._current_aliases(parsed.name, log)
            check_expected(parsed.name, alias, aliases.get(alias), expected)
            target = self._with_state(
                self.read_manifest(parsed.name, self._resolve(parsed, aliases)), aliases
            )
            if not force:
                refuse_failed_checks(target, alias, self.protected_aliases)
            if aliases.get(alias) == target.version:
                return None
            return self._move(
                log, aliases, alias, target.version, reason, actor, None, forced=force
            )

        with self._artifact_locked(parsed.name):
            move = _retrying(attempt)
        return self._moved(parsed.name, move)

    def remove_alias(
        self, name: str, alias: str, *, reason: str = "", actor: str | None = None
    ) -> AliasMove:
        validate_name(name)
        validate_alias(alias)
        if alias == LATEST:
            raise InvalidNameError("alias 'latest' is moved by writes only")

        def attempt() -> AliasMove:
            log = self._alias_log(name)
            aliases = log.current()
            if alias not in aliases:
                raise ArtifactNotFoundError(f"artifact {name!r} has no alias {alias!r}")
            return self._move(log, aliases, alias, None, reason, actor, None)

        with self._artifact_locked(name):
            move = _retrying(attempt)
        self.listeners.tell("alias_moved", name, move)
        return move

    def move_latest(
        self, ref: RefLike, *, reason: str = "", actor: str | None = None, run_id: str | None = None
    ) -> AliasMove | None:
        """Point ``latest`` at an existing version without writing it again; returns the logged
        move, or None if ``latest`` was already there.

        ``latest`` means "the newest result", and a writer of equal bytes moves it back to the
        version they match. A caller that knows the result without writing it (the run cache:
        same code, config and inputs as the run that made ``ref``) moves it here instead, and
        the move is logged like a write's, with the run that made it.
        """
        parsed = _parse(ref)

        def attempt() -> AliasMove | None:
            log = self._alias_log(parsed.name)
            aliases = self._current_aliases(parsed.name, log)
            target = self.read_manifest(parsed.name, self._resolve(parsed, aliases)).version
            if aliases.get(LATEST) == target:
                return None
            return self._move(log, aliases, LATEST, target, reason, actor, run_id)

        with self._artifact_locked(parsed.name):
            move = _retrying(attempt)
        return self._moved(parsed.name, move)

    def mark(self, ref: RefLike, key: str, value: Any) -> dict[str, Any]:
        """Set a flag on a version (``None`` removes it); returns all its flags."""
        return self._update_flags(ref, key, lambda sidecar: sidecar.update({key: value}))

    def mark_entries(self, ref: RefLike, key: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``changes`` into the dict held by flag ``key`` (``None`` removes an entry; the flag
        goes when its last entry does), all under the artifact lock. For a flag several writers
        share, such as ``failed_checks`` with one entry per check run in separate steps, where a
        read-then-:meth:`mark` could lose another writer's entry."""

        def update(sidecar: FlagSidecar) -> dict[str, Any]:
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

        return self._update_flags(ref, key, update)

    def _update_flags(
        self, ref: RefLike, key: str, update: Callable[[FlagSidecar], dict[str, Any]]
    ) -> dict[str, Any]:
        """Read-modify-write of an existing version's flags: under its artifact lock on a folder,
        compare-and-swap everywhere (re-read and redone if another writer changed them first)."""
        if not isinstance(key, str) or not key:
            raise InvalidNameError(f"flag key must be a non-empty string, got {key!r}")
        parsed = _parse(ref)
        with self._artifact_locked(parsed.name):
            version = self._resolve(parsed, self.aliases(parsed.name))
            self.read_manifest(parsed.name, version)
            flags = _retrying(lambda: update(self._flag_sidecar(parsed.name, version)))
        self.listeners.tell("version_flagged", version_ref(parsed.name, version), key, flags.get(key))
        return flags

    def _moved(self, name: str, move: AliasMove | None) -> AliasMove | None:
        """Tell the listeners of a committed move (None: the alias was already there)."""
        if move is not None:
            self.listeners.tell("alias_moved", name, move)
        return move

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

    # -- internals -----------------------------------------------------------------------

    def _resolve(self, parsed: Ref, aliases: Mapping[str, int]) -> int:
        if parsed.version is not None:
            if self.backend.info(self.layout.manifest(parsed.name, parsed.version)) is None:
                raise ArtifactNotFoundError(_not_found(self, parsed))
            return parsed.version
        assert parsed.alias is not None
        if parsed.alias not in aliases:
            raise ArtifactNotFoundError(_not_found(self, parsed))
        return aliases[parsed.alias]

    def _alias_log(self, name: str) -> AliasLog:
        return AliasLog(self.backend, self.layout.alias_log(name))

    def _flag_sidecar(self, name: str, version: int) -> FlagSidecar:
        return FlagSidecar(self.backend, self.layout.flags(name, version))

    def _with_state(self, manifest: VersionManifest, aliases: Mapping[str, int]) -> VersionManifest:
        flags = self._flag_sidecar(manifest.name, manifest.version).read()
        return manifest.with_state(aliases_of(manifest.version, aliases), flags)

    def _checked_blob(self, version: VersionManifest, entry: FileEntry) -> Path:
        """A local file with the entry's bytes, checked against its sha256 (on object storage,
        this machine's cached copy, checked as :meth:`.BlobStore.fetch` says)."""
        try:
            blob, actual = self.blobs.fetch(entry.sha256)
        except FileNotFoundError:
            raise _missing_blob(version, entry) from None
        if actual != entry.sha256:
            raise _tampered_blob(version, entry, actual)
        return blob


class FlagSidecar:
    """The flags of one version: small mutable facts learnt after it was written (its checks
    failed, it was evaluated), kept next to (not inside) its immutable manifest. An update replaces
    the file only if it is still what was read (compare-and-swap), so two steps flagging one version
    at once, on one machine or two, never lose each other's flags."""

    def __init__(self, backend: Backend, key: str) -> None:
        self.backend = backend
        self.key = key
        self._read: Stored | None = None
        self._loaded = False

    def read(self) -> dict[str, Any]:
        self._loaded = True
        try:
            self._read = self.backend.read(self.key)
        except FileNotFoundError:
            self._read = None
            return {}
        try:
            flags = json.loads(self._read.data)
            if not isinstance(flags, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            name = self.key.rsplit("/", 1)[-1]
            raise IntegrityError(f"flags file {name} is unreadable: {exc}") from exc
        return flags

    def update(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Set (or, with ``None``, remove) keys of the flags last :meth:`read` (read now if not
        yet); raises :class:`~.backend.PreconditionFailed` if they changed since."""
        check_json_able(dict(changes), "a flag value")
        flags = self.read() if not self._loaded else json.loads(self._read.data) if self._read else {}
        for key, value in changes.items():
            if value is None:
                flags.pop(key, None)
            else:
                flags[key] = value
        data = dumps_json(flags)
        if self._read is None:
            self.backend.write(self.key, data, if_absent=True)
        else:
            self.backend.write(self.key, data, if_match=self._read.etag)
        self._loaded = False
        return flags


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
        return f"no artifact named {parsed.name!r} in {store.location} (artifacts: {known})"
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
