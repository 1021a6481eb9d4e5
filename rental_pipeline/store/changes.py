"""What changes after a version is written: its aliases (moved by writes, promotions and people)
and its flags (facts learnt later, such as failed checks).

Each change is decided on the latest state and committed by one conditional write: an alias move
is one append to the artifact's log (:mod:`.aliases`), a flag change one replacement of the
version's flags file, either done only if the record is still what was read, else read again and
retried. On a folder the changer also holds the artifact's lock.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from .aliases import (
    ANY_TARGET,
    AliasLog,
    AliasMove,
    AnyTarget,
    check_expected,
    default_actor,
    refuse_failed_checks,
    utc_now,
)
from .backend import Backend, Stored, retrying
from .errors import ArtifactNotFoundError, IntegrityError, InvalidNameError
from .manifest import RefLike, check_json_able, dumps_json, ref_of
from .names import LATEST, validate_alias, validate_name, version_ref


class Changes:
    """How :class:`.ArtifactStore` moves aliases and sets flags (a part of it: it uses the store's
    locks, reads and listeners)."""

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
        parsed = ref_of(ref)

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
            move = retrying(attempt)
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
            move = retrying(attempt)
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
        parsed = ref_of(ref)

        def attempt() -> AliasMove | None:
            log = self._alias_log(parsed.name)
            aliases = self._current_aliases(parsed.name, log)
            target = self.read_manifest(parsed.name, self._resolve(parsed, aliases)).version
            if aliases.get(LATEST) == target:
                return None
            return self._move(log, aliases, LATEST, target, reason, actor, run_id)

        with self._artifact_locked(parsed.name):
            move = retrying(attempt)
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
        parsed = ref_of(ref)
        with self._artifact_locked(parsed.name):
            version = self._resolve(parsed, self.aliases(parsed.name))
            self.read_manifest(parsed.name, version)
            flags = retrying(lambda: update(self._flag_sidecar(parsed.name, version)))
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
