"""The records that change after a version is written: the alias log and a version's flags.

The reference project moved ``prod`` and ``reference`` by hand with nothing recording why. Here
every move is one JSON line (alias, from which version, to which, when, who, why) added to the
artifact's log, and the current aliases are *computed* from that log: a move is committed by one
conditional write, so the log and the alias state can never disagree, even after a crash. A flag
(a fact learnt later, such as failed checks) lives in a small file beside the immutable manifest.
Either record is replaced only if it is still what its writer read (compare-and-swap), so two
machines changing it at once never lose a change: the slower one reads again and retries.

A retry is right for a move that does not care where the alias was. A move decided *against*
its current target ("the candidate beats prod v1") is not: it names that target (``expected``),
and if another mover got there first it fails with :class:`AliasConflictError` instead of
overwriting a move it never saw; the caller compares again.

Aliases can also be refused (:class:`AliasRefusedError`): the aliases a store protects (its
caller names them, e.g. ``reference`` and ``prod``) stay off versions flagged as having failed
checks.
"""

from __future__ import annotations

import enum
import getpass
import json
import socket
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .backend import Backend, Stored
from .errors import AliasConflictError, AliasRefusedError, IntegrityError
from .manifest import VersionManifest, check_json_able, dumps_json

FAILED_CHECKS_FLAG = "failed_checks"


class AnyTarget(enum.Enum):
    """The type of :data:`ANY_TARGET`: an enum member, so type checkers tell it from a version."""

    ANY = "any"


#: ``expected`` of a move that does not care where the alias is now (None already means "nowhere").
ANY_TARGET = AnyTarget.ANY


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def default_actor() -> str:
    """Who is moving an alias when the caller does not say: ``user@host``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class AliasMove:
    """One alias change. ``to_version`` None means the alias was removed."""

    alias: str
    from_version: int | None
    to_version: int | None
    at: str
    actor: str
    reason: str = ""
    run_id: str | None = None
    forced: bool = False  # the alias guard refused and the caller overrode it

    def to_json(self) -> dict[str, Any]:
        record = {
            "alias": self.alias,
            "from": self.from_version,
            "to": self.to_version,
            "at": self.at,
            "actor": self.actor,
            "reason": self.reason,
            "run_id": self.run_id,
        }
        if self.forced:
            record["forced"] = True
        return record

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> AliasMove:
        return cls(
            alias=str(raw["alias"]),
            from_version=None if raw.get("from") is None else int(raw["from"]),
            to_version=None if raw.get("to") is None else int(raw["to"]),
            at=str(raw["at"]),
            actor=str(raw.get("actor") or ""),
            reason=str(raw.get("reason") or ""),
            run_id=raw.get("run_id"),
            forced=bool(raw.get("forced", False)),
        )


class AliasLog:
    """The append-only log of one artifact's alias moves; the current aliases are its fold.

    :meth:`read` remembers what it read, and :meth:`append` adds a move only if the log is still
    that (:class:`~.backend.PreconditionFailed` otherwise), so a move is always decided on the
    latest state. What follows the last newline counts as a move only if it is a whole one
    (:func:`_tail_is_move`); :meth:`tail_problems` reports it either way.
    """

    def __init__(self, backend: Backend, key: str) -> None:
        self.backend = backend
        self.key = key
        self.name = key.rsplit("/", 1)[-1]
        self._read: Stored | None = None
        self._loaded = False

    def read(self) -> AliasLog:
        try:
            self._read = self.backend.read(self.key)
        except FileNotFoundError:
            self._read = None
        self._loaded = True
        return self

    def _split(self) -> tuple[list[bytes], bytes]:
        """The log's newline-ended lines, and what follows the last newline (b"" if nothing)."""
        if not self._loaded:
            self.read()
        if self._read is None:
            return [], b""
        *lines, tail = self._read.data.split(b"\n")
        return lines, tail

    def _records(self) -> Iterator[tuple[int, AliasMove | str]]:
        """Each committed record by line number: its move, or why it cannot be read."""
        lines, tail = self._split()
        for number, line in enumerate([*lines, tail] if _tail_is_move(tail) else lines, start=1):
            if not line.strip():
                continue
            try:
                yield number, AliasMove.from_json(json.loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                yield number, f"{self.name} line {number} is unreadable: {exc}"

    def moves(self) -> list[AliasMove]:
        """All moves, oldest first; an unreadable committed line is an :class:`IntegrityError`."""
        moves = []
        for _, record in self._records():
            if isinstance(record, str):
                raise IntegrityError(record)
            moves.append(record)
        return moves

    def problems(self) -> list[str]:
        """The committed lines that cannot be read (any one makes :meth:`moves` fail)."""
        return [record for _, record in self._records() if isinstance(record, str)]

    def tail_problems(self) -> list[str]:
        """What is odd about the end of the log without making it unreadable: a last line that
        lacks its newline (a crash, or the log cut short, which would undo its last move unseen:
        see :mod:`.maintenance`)."""
        lines, tail = self._split()
        if not tail:
            return []
        number = len(lines) + 1
        if _tail_is_move(tail):
            return [
                f"{self.name} line {number} has no final newline (the log was cut short?); the move it "
                "records counts, and the next move adds the newline"
            ]
        return [
            f"{self.name} line {number}: an incomplete last line (a crash during a move?) is ignored; "
            "if the log was cut short instead, its last move is lost, and the next move drops the line"
        ]

    def current(self) -> dict[str, int]:
        aliases: dict[str, int] = {}
        for move in self.moves():
            if move.to_version is None:
                aliases.pop(move.alias, None)
            else:
                aliases[move.alias] = move.to_version
        return aliases

    def append(self, move: AliasMove) -> None:
        """Commit a move, if the log is still what was read; raises PreconditionFailed if not."""
        line = json.dumps(move.to_json(), sort_keys=True, allow_nan=False).encode("utf-8")
        _, tail = self._split()
        self.backend.append_line(self.key, line, after=self._read, keep_tail=_tail_is_move(tail))
        self._loaded = False  # the next reader reads what is there now


def _tail_is_move(tail: bytes) -> bool:
    """Whether the bytes after the log's last newline are a whole move that only lost its newline.

    A move is written as its JSON object *and* newline, so a crash while appending in place leaves
    a prefix of that object, which never parses: the outer ``}`` is the record's last byte. A whole
    object with no newline after it was therefore written completely (and then cut by one byte, or
    the newline alone was lost): it is committed. Anything else there is a torn record.
    """
    if not tail.strip():
        return False
    try:
        raw = json.loads(tail)
        if not isinstance(raw, dict):
            return False
        AliasMove.from_json(raw)
    except (ValueError, KeyError, TypeError):
        return False
    return True


class FlagSidecar:
    """The flags of one version: small mutable facts learnt after it was written (its checks
    failed, it was evaluated), kept next to (not inside) its immutable manifest, and replaced only
    if still what was read, so two steps flagging one version at once never lose each other's."""

    def __init__(self, backend: Backend, key: str) -> None:
        self.backend = backend
        self.key = key
        self._read: Stored | None = None
        self._flags: dict[str, Any] | None = None  # as last read

    def read(self) -> dict[str, Any]:
        try:
            self._read = self.backend.read(self.key)
        except FileNotFoundError:
            self._read, self._flags = None, {}
            return {}
        try:
            flags = json.loads(self._read.data)
            if not isinstance(flags, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            name = self.key.rsplit("/", 1)[-1]
            raise IntegrityError(f"flags file {name} is unreadable: {exc}") from exc
        self._flags = flags
        return dict(flags)

    def update(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Set (or, with ``None``, remove) keys of the flags last :meth:`read` (read now if not
        yet); raises :class:`~.backend.PreconditionFailed` if they changed since."""
        check_json_able(dict(changes), "a flag value")
        flags = merged(self.read() if self._flags is None else self._flags, changes)
        if self._read is None:
            self.backend.write(self.key, dumps_json(flags), if_absent=True)
        else:
            self.backend.write(self.key, dumps_json(flags), if_match=self._read.etag)
        self._flags = None  # the next update reads what is there now
        return flags


def merged(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` applied, where a change to None removes the key."""
    result = dict(base)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def describe_target(version: int | None) -> str:
    return "unset" if version is None else f"v{version}"


def check_expected(name: str, alias: str, current: int | None, expected: int | None | AnyTarget) -> None:
    """Refuse a move decided against another target than the alias has now (see the module)."""
    if expected is ANY_TARGET or current == expected:
        return
    raise AliasConflictError(
        f"{alias} of {name} is now {describe_target(current)}, not {describe_target(expected)} as expected: "
        f"another move got there first; compare against {describe_target(current)} and decide again",
        expected=expected,
        current=current,
    )


def aliases_of(version: int, aliases: Mapping[str, int]) -> tuple[str, ...]:
    return tuple(sorted(alias for alias, target in aliases.items() if target == version))


def describe_failures(failed: Any) -> str:
    if isinstance(failed, Mapping):
        return "; ".join(f"{name}: {detail}" if detail else str(name) for name, detail in failed.items())
    if isinstance(failed, Iterable) and not isinstance(failed, str | bytes):
        return ", ".join(str(name) for name in failed)
    return str(failed)


def refuse_failed_checks(version: VersionManifest, alias: str, protected: Iterable[str]) -> None:
    """Keep ``protected`` aliases off a version whose ``failed_checks`` flag names failed checks.

    A caller records failures with ``store.mark_entries(ref, "failed_checks", {...})``; moving a
    protected alias (say ``prod``) to such a version is then refused with the failed checks named,
    unless the mover passes ``force=True``.
    """
    if alias not in protected:
        return
    failed = version.flags.get(FAILED_CHECKS_FLAG)
    if failed:
        raise AliasRefusedError(
            f"refusing to set alias {alias!r} on {version.ref}: it failed checks: {describe_failures(failed)}"
        )
