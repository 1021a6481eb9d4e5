"""The artifact store: versioned, immutable, content-addressed artifacts, the system of record.

The root is a folder or ``s3://bucket/prefix`` (:mod:`.backend`, :mod:`.s3_backend`), with one
algorithm for both: writes, alias moves and flag changes commit by conditional writes
(:mod:`.changes`); this module reads. Readers take no lock: a version exists exactly when its
manifest does, and the manifest is published only after all its blobs are durable.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from . import codecs
from .aliases import AliasLog, AliasMove, FlagSidecar, aliases_of
from .backend import Backend, ObjectInfo
from .blobs import blob_store
from .changes import Changes, Listeners
from .errors import ArtifactNotFoundError, CodecError, IntegrityError
from .layout import StoreLayout, open_backend
from .manifest import FileEntry, RefLike, VersionManifest, parse_manifest, ref_of
from .names import LATEST, Ref, validate_name, version_ref

__all__ = ["ArtifactStore", "ArtifactSummary", "RefLike"]
T = TypeVar("T")


@dataclass(frozen=True)
class ArtifactSummary:
    name: str
    type: str
    versions: tuple[int, ...]
    aliases: Mapping[str, int] = field(default_factory=dict)

    @property
    def latest(self) -> int | None:
        return self.aliases.get(LATEST)


class ArtifactStore(Changes):
    """Versioned, content-addressed artifacts under one root (see :mod:`.layout`).

    ``root`` is a folder or ``s3://bucket/prefix[?endpoint_url=...&region=...]``. ``self.root`` is
    always a folder on this machine: the store itself, or for object storage ``local_dir``, the
    folder of this machine's cached files (required there; its users may keep their own records
    in it too); ``self.location`` is the root as given. ``protected_aliases`` stay off versions
    flagged as having failed checks (:func:`.refuse_failed_checks`). ``listeners`` are told of
    each committed write, alias move and flag change (:class:`.StoreListener`; :meth:`subscribe` adds one).
    ``s3_region`` and ``s3_endpoint_url`` are the caller's for a URL that names none (else boto3's
    own resolution); they are not part of ``self.location``.
    """

    def __init__(
        self,
        root: Path | str,
        *,
        local_dir: Path | str | None = None,
        protected_aliases: Iterable[str] = (),
        listeners: Iterable[object] = (),
        s3_region: str | None = None,
        s3_endpoint_url: str | None = None,
    ) -> None:
        self.protected_aliases = tuple(protected_aliases)
        self.listeners = Listeners(listeners)
        self.backend: Backend = open_backend(
            root, local_dir=local_dir, s3_region=s3_region, s3_endpoint_url=s3_endpoint_url
        )
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
        """Tell ``listener`` of what this store commits from now on (see :class:`.StoreListener`)."""
        self.listeners.append(listener)

    def unsubscribe(self, listener: object) -> None:
        self.listeners.remove(listener)

    # -- locks ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def pinned(self) -> Iterator[None]:
        """Keep ``gc`` out while held: blobs and versions seen inside stay where they are (on
        object storage, ``gc``'s grace period does this instead)."""
        with self.backend.shared_lock():
            yield

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Keep every writer, alias move and flag change out while held: ``gc`` takes it, so it
        never deletes a blob a writer is about to commit. On object storage there is no lock and
        this holds nothing (``gc`` keeps recent blobs for a grace period instead)."""
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
        :meth:`.StoreLayout.committed` listed it, saves asking for it)."""
        ref = version_ref(name, version)
        key = self.layout.manifest(name, version)
        cached = self._manifests.get((name, version))
        if cached is not None:
            current = listed or self.backend.info(key)
            if current is not None and current.etag == cached[0]:
                return cached[1]
        try:
            stored = self.backend.read(key)
        except FileNotFoundError:
            raise ArtifactNotFoundError(f"{ref} does not exist in {self.location}") from None
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
        parsed = ref_of(ref)
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
        """The bytes of one file, checked against the manifest's sha256 (on object storage, through
        this machine's cache of blobs, checked as :meth:`.CachedBlobStore.fetch` says)."""
        version = self.get(ref)
        return self._checked(version, _entry(version, path), self.blobs.read_checked)

    def paths(self, ref: RefLike) -> dict[str, Path]:
        """Local paths of every file of a version, each checked first; do not modify them (on
        object storage, this machine's cached copies, fetched when missing)."""
        version = self.get(ref)
        return {entry.path: self._checked(version, entry, self.blobs.fetch) for entry in version.files}

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
        return codec.decode(self._checked(version, _entry(version, codec.filename), self.blobs.read_checked))

    def blob_problems(self, ref: RefLike, *, deep: bool = False) -> builtins.list[str]:
        """What is wrong with the stored bytes of a version's files, found without downloading
        them: each blob must exist with the size its manifest gives (a stat on a folder, a HEAD
        request on object storage). Empty when nothing is found.

        ``deep`` also catches bytes altered at the same size, as :meth:`.BlobStore.altered` and
        :meth:`.CachedBlobStore.altered` say (a hash on a folder, the ETag on object storage);
        every read still refuses altered bytes.

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

    def _checked(self, version: VersionManifest, entry: FileEntry, read: Callable[[str], tuple[T, str]]) -> T:
        """What ``read`` gives for the entry's blob (its bytes, or a local file with them), refused
        unless the bytes it read have the entry's sha256."""
        try:
            found, actual = read(entry.sha256)
        except FileNotFoundError:
            raise IntegrityError(
                f"{version.ref} file {entry.path!r}: its stored bytes (sha256 {entry.sha256[:16]}...) are "
                "missing from the store"
            ) from None
        if actual != entry.sha256:
            raise IntegrityError(
                f"{version.ref} file {entry.path!r}: stored bytes were altered (sha256 {actual[:16]}..., "
                f"manifest says {entry.sha256[:16]}...); refusing to read them"
            )
        return found


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
