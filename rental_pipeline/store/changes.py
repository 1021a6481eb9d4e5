"""How a store changes: writing a version, moving its aliases, setting its flags; who hears of it.

A write puts its blobs first, then its manifest (which commits it), then moves ``latest``. A
version number is claimed by *creating* its manifest, refused if another writer got there first
(then the next number is tried); content equal to an existing version's reuses it. An alias move
or a flag change is decided on the latest state and committed by one conditional write of its
record (:mod:`.aliases`), read again and retried if another writer changed it first. On a folder
the changer also holds the store lock shared and the artifact's lock (see :mod:`.backend`).

Others follow what a store commits as listeners, like Kedro's dataset hooks: any object with some
of the methods of :class:`StoreListener` (subclass it to leave the others out). They are called
once the change is committed and the locks are released, so a listener may read the store or take
its time without holding up other writers; in the order they were subscribed. A listener that
raises reaches the caller with its exception, but what was committed stays committed. ::

    class Printer(StoreListener):
        def alias_moved(self, name, move):
            print(f"{move.alias} of {name} -> {move.to_version}")

    store = ArtifactStore(root, listeners=[Printer()])  # or store.subscribe(Printer())
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from . import codecs
from .aliases import (
    ANY_TARGET,
    AliasLog,
    AliasMove,
    AnyTarget,
    FlagSidecar,
    check_expected,
    default_actor,
    merged,
    refuse_failed_checks,
    utc_now,
)
from .backend import retrying
from .blobs import artifact_digest, hash_bytes
from .errors import ArtifactNotFoundError, ArtifactTypeError, InvalidNameError
from .manifest import FileEntry, RefLike, VersionManifest, check_json_able, ref_of
from .names import LATEST, validate_alias, validate_file_path, validate_name, validate_type, version_ref

#: What :meth:`Changes._change_alias` asks of its caller: the move to make, decided on the alias
#: log and the current aliases it was read with (None: nothing to move).
Decide = Callable[[AliasLog, dict[str, int]], AliasMove | None]


class StoreListener:
    """What a store tells its listeners; each method here does nothing."""

    def version_saved(self, version: VersionManifest, created: bool) -> None:
        """A write committed ``version`` (``created`` False: equal bytes reused an existing
        version). ``latest`` has moved to it already (see :meth:`alias_moved`)."""

    def alias_moved(self, name: str, move: AliasMove) -> None:
        """An alias of artifact ``name`` moved (``move.to_version`` None: it was removed); writes
        moving ``latest`` included."""

    def version_flagged(self, ref: str, key: str, value: Any) -> None:
        """Flag ``key`` of version ``ref`` (``name:vN``) is now ``value`` (None: removed)."""


class Listeners(list[object]):
    """A store's listeners, told of each event in subscription order."""

    def tell(self, event: str, *args: Any) -> None:
        """Call ``event`` on every listener that has it."""
        for listener in list(self):
            method = getattr(listener, event, None)
            if method is not None:
                method(*args)


@dataclass(frozen=True)
class WriteResult:
    version: VersionManifest
    created: bool  # False when identical content reused an existing version


class Changes:
    """How :class:`.ArtifactStore` changes (a part of it: it uses the store's locks, layout, blobs,
    reads and listeners)."""

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
            validate_file_path(path)
            if not isinstance(files[path], bytes | bytearray | memoryview):
                got = files[path].__class__.__name__  # (``type`` is the artifact type here)
                raise TypeError(f"artifact {name!r} file {path!r}: expected bytes, got {got}")
            data = bytes(files[path])
            hashes = hash_bytes(data)
            payload.append((FileEntry(path, hashes.entry_digest, hashes.sha256, hashes.size), data))
        entries = tuple(entry for entry, _ in payload)
        # The new version but for its number and time, which its commit decides.
        draft = VersionManifest(
            name=name,
            version=-1,
            type=type,
            digest=artifact_digest((e.path, e.digest) for e in entries),
            files=entries,
            created_at="",
            description=description,
            metadata=MappingProxyType(metadata),
            run_id=run_id,
            code_version=code_version,
        )
        with self.pinned():
            draft = replace(draft, inputs=tuple(dict.fromkeys(self.get(i).ref for i in inputs)))
            for entry, data in payload:
                self.blobs.put(data, entry.sha256)
            with self.backend.artifact_lock(name):
                result, moved = self._commit(draft)
        self.listeners.tell("version_saved", result.version, result.created)
        if moved is not None:
            self.listeners.tell("alias_moved", name, moved)
        return result

    def _commit(self, draft: VersionManifest) -> tuple[WriteResult, AliasMove | None]:
        name = draft.name

        def publish() -> tuple[VersionManifest, bool]:
            """Reuse a version with this digest, or create the next one (create-only)."""
            listed = self.layout.committed(name)
            existing = [
                m for m in (self.try_read_manifest(name, v, info) for v, info in listed.items()) if m is not None
            ]
            if existing and existing[0].type != draft.type:
                raise ArtifactTypeError(
                    f"artifact {name!r} has type {existing[0].type!r}; refusing a version of type "
                    f"{draft.type!r} (use another name)"
                )
            same = next((m for m in reversed(existing) if m.digest == draft.digest), None)
            if same is not None:
                return same, False
            number = max(listed) + 1 if listed else 0
            manifest = replace(draft, version=number, created_at=utc_now())
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
            return aliases, self._move(log, aliases, LATEST, manifest.version, reason, None, draft.run_id)

        aliases, moved = retrying(move_latest)
        return WriteResult(self._with_state(manifest, aliases), created=created), moved

    def save(
        self,
        name: str,
        obj: Any,
        *,
        type: str,  # noqa: A002 - the W&B term
        metadata: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> WriteResult:
        """Encode ``obj`` with its codec (frame, model, dict) and :meth:`write` it (``fields``:
        the other arguments of :meth:`write`)."""
        codec = codecs.codec_for(obj)
        metadata = dict(metadata or {})
        if metadata.setdefault(codecs.FORMAT_KEY, codec.format) != codec.format:
            raise ValueError(f"metadata key {codecs.FORMAT_KEY!r} is reserved for the codec ({codec.format!r})")
        return self.write(name, {codec.filename: codec.encode(obj)}, type=type, metadata=metadata, **fields)

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
        _check_settable(alias)
        if isinstance(expected, bool) or not (
            expected is ANY_TARGET or expected is None or isinstance(expected, numbers.Integral)
        ):
            raise TypeError(f"expected must be a version number or None, got {expected!r}")
        if isinstance(expected, numbers.Integral):
            expected = int(expected)  # a numpy integer read from a frame, say
        parsed = ref_of(ref)

        def decide(log: AliasLog, aliases: dict[str, int]) -> AliasMove | None:
            check_expected(parsed.name, alias, aliases.get(alias), expected)
            target = self._with_state(self.read_manifest(parsed.name, self._resolve(parsed, aliases)), aliases)
            if not force:
                refuse_failed_checks(target, alias, self.protected_aliases)
            if aliases.get(alias) == target.version:
                return None
            return self._move(log, aliases, alias, target.version, reason, actor, None, forced=force)

        return self._change_alias(parsed.name, decide)

    def remove_alias(self, name: str, alias: str, *, reason: str = "", actor: str | None = None) -> AliasMove:
        validate_name(name)
        _check_settable(alias)

        def decide(log: AliasLog, aliases: dict[str, int]) -> AliasMove:
            if alias not in aliases:
                raise ArtifactNotFoundError(f"artifact {name!r} has no alias {alias!r}")
            return self._move(log, aliases, alias, None, reason, actor, None)

        move = self._change_alias(name, decide)
        assert move is not None
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
        parsed = ref_of(ref)

        def decide(log: AliasLog, aliases: dict[str, int]) -> AliasMove | None:
            target = self.read_manifest(parsed.name, self._resolve(parsed, aliases)).version
            if aliases.get(LATEST) == target:
                return None
            return self._move(log, aliases, LATEST, target, reason, actor, run_id)

        return self._change_alias(parsed.name, decide)

    def _change_alias(self, name: str, decide: Decide) -> AliasMove | None:
        """Decide a move on the latest alias log and commit it, retried while another mover gets
        there first, under the artifact's locks; then tell the listeners."""

        def attempt() -> AliasMove | None:
            log = self._alias_log(name)
            return decide(log, self._current_aliases(name, log))

        with self._artifact_locked(name):
            move = retrying(attempt)
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
        """Append the move to ``log`` and apply it to ``aliases``, the state it was decided on."""
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
            return sidecar.update({key: merged(entries, changes) or None})

        return self._update_flags(ref, key, update)

    def _update_flags(
        self, ref: RefLike, key: str, update: Callable[[FlagSidecar], dict[str, Any]]
    ) -> dict[str, Any]:
        """Read-modify-write of an existing version's flags: under its artifact lock on a folder,
        compare-and-swap everywhere (re-read and redone if another writer changed them first)."""
        if not isinstance(key, str) or not key:
            raise InvalidNameError(f"flag key must be a non-empty string, got {key!r}")
        parsed = ref_of(ref)
        with self._artifact_locked(parsed.name):
            version = self._resolve(parsed, self.aliases(parsed.name))
            self.read_manifest(parsed.name, version)
            flags = retrying(lambda: update(self._flag_sidecar(parsed.name, version)))
        self.listeners.tell("version_flagged", version_ref(parsed.name, version), key, flags.get(key))
        return flags


def _check_settable(alias: str) -> None:
    """An alias a caller may move: valid, and not ``latest``, which only writes move."""
    validate_alias(alias)
    if alias == LATEST:
        raise InvalidNameError("alias 'latest' is moved by writes only")
