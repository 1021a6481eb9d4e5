"""The errors the artifact store raises.

Callers need to tell a bad name from a missing version from damaged bytes, so each failure has
its own class; all derive from :class:`StoreError` so one ``except`` catches everything the store
can say.
"""

from __future__ import annotations


class StoreError(Exception):
    """Anything the artifact store refuses or cannot do."""


class InvalidNameError(StoreError, ValueError):
    """An artifact name, alias, type, file path or reference is not acceptable."""


class ArtifactNotFoundError(StoreError, LookupError):
    """A reference names an artifact, version or alias that the store does not have."""

    def __str__(self) -> str:  # LookupError would repr() a single argument
        return str(self.args[0]) if self.args else ""


class IntegrityError(StoreError):
    """Stored bytes or records do not match what the manifest promises (tampered or missing)."""


class ArtifactTypeError(StoreError, ValueError):
    """A write would give an artifact a different type from the one its versions already have."""


class AliasRefusedError(StoreError):
    """An alias move was refused, e.g. ``prod`` on a version that failed its checks."""


class AliasConflictError(StoreError):
    """An alias move decided against one target found another: someone moved the alias since.

    Not retried by the store: a decision such as "the new model beats ``prod``" holds only against
    the ``prod`` it was compared with, so the caller must look again (``.current``) and decide anew.
    ``.expected`` and ``.current`` are version numbers, None for "no such alias".
    """

    def __init__(self, message: str, *, expected: int | None, current: int | None) -> None:
        super().__init__(message)
        self.expected = expected
        self.current = current


class CodecError(StoreError):
    """An object could not be encoded to bytes, or bytes could not be decoded."""
