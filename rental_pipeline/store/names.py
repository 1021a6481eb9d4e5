"""Rules for artifact names, aliases, types, file paths and references (``name:vN``/``:alias``).

Names become directory names and W&B artifact names, and file paths become paths below the store,
so anything that could escape the store (``..``, separators, absolute paths) or collide with the
store's own files (leading dots) is refused up front, with a message that says what is allowed.
The character set is W&B's (letters, digits, ``_ - .``) so every local name can be mirrored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidNameError

MAX_NAME_LENGTH = 128
LATEST = "latest"

_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_VERSION_RE = re.compile(r"v(0|[1-9][0-9]*)")
_ALLOWED = "letters, digits, '_', '-' and '.', not starting with '.' or '-'"


def _check_token(kind: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidNameError(f"{kind} must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidNameError(f"{kind} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidNameError(
            f"{kind} {value[:40]!r}... is longer than {MAX_NAME_LENGTH} characters"
        )
    if not _NAME_RE.fullmatch(value):
        bad = sorted({c for c in value if not re.fullmatch(r"[A-Za-z0-9_.\-]", c)})
        detail = f" (found {''.join(bad)!r})" if bad else ""
        raise InvalidNameError(f"{kind} {value!r} is not valid: use {_ALLOWED}{detail}")
    return value


def validate_name(name: object) -> str:
    """Return ``name`` if it can name an artifact, else raise :class:`InvalidNameError`."""
    return _check_token("artifact name", name)


def validate_type(artifact_type: object) -> str:
    """Return ``artifact_type`` if W&B would accept it as an artifact type."""
    return _check_token("artifact type", artifact_type)


def is_version_tag(text: str) -> bool:
    """True for ``v0``, ``v12``...: the spelling reserved for version numbers."""
    return bool(_VERSION_RE.fullmatch(text))


def validate_alias(alias: object) -> str:
    """Return ``alias`` if it can be set by hand; ``vN`` spellings are reserved for versions."""
    _check_token("alias", alias)
    assert isinstance(alias, str)
    if re.fullmatch(r"v[0-9]+", alias):
        raise InvalidNameError(f"alias {alias!r} looks like a version number; choose another name")
    return alias


def validate_file_path(path: object) -> str:
    """Return ``path`` if it is a safe relative path inside an artifact (``a/b.parquet``)."""
    if not isinstance(path, str) or not path:
        raise InvalidNameError(f"file path must be a non-empty string, got {path!r}")
    if "\\" in path or path.startswith("/"):
        raise InvalidNameError(f"file path {path!r} must be relative and use '/' between parts")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise InvalidNameError(f"file path {path!r} has an empty, '.' or '..' part")
        _check_token(f"file path part of {path!r}:", part)
    return path


@dataclass(frozen=True)
class Ref:
    """A parsed reference: an artifact name plus at most one of a version number or an alias."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:v{self.version}"
        if self.alias is not None:
            return f"{self.name}:{self.alias}"
        return self.name


def parse_ref(ref: object) -> Ref:
    """Parse ``name``, ``name:vN`` or ``name:alias`` (a bare name means ``name:latest``)."""
    if not isinstance(ref, str):
        raise InvalidNameError(f"reference must be a string like 'name:v3', got {ref!r}")
    name, sep, selector = ref.partition(":")
    validate_name(name)
    if not sep:
        return Ref(name, alias=LATEST)
    if not selector:
        raise InvalidNameError(f"reference {ref!r} has an empty version or alias after ':'")
    if is_version_tag(selector):
        return Ref(name, version=int(selector[1:]))
    if ":" in selector:
        raise InvalidNameError(f"reference {ref!r} has more than one ':'")
    _check_token(f"alias in reference {ref!r}:", selector)
    if re.fullmatch(r"v[0-9]+", selector):
        raise InvalidNameError(f"reference {ref!r}: write versions without leading zeros, e.g. v3")
    return Ref(name, alias=selector)


def version_ref(name: str, version: int) -> str:
    """The exact reference of one version, ``name:vN``."""
    return f"{name}:v{version}"
