"""Flags: small mutable facts recorded about a version after it was written.

A version's manifest is immutable, but the pipeline learns things later (the data checks failed,
the model was evaluated, the version was mirrored). Those go into a per-version JSON sidecar, so
the committed record never changes while the flags can; :mod:`aliases` guards read them. An
update replaces the sidecar only if it is still what was read (compare-and-swap), so two steps
flagging one version at once, on one machine or two, never lose each other's flags.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .backend import Backend, Stored
from .errors import IntegrityError
from .manifest import check_json_able, dumps_json


class FlagSidecar:
    """The flags of one version, stored next to (not inside) its manifest."""

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
