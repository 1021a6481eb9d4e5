"""Flags: small mutable facts recorded about a version after it was written.

A version's manifest is immutable, but the pipeline learns things later (the data checks failed,
the model was evaluated, the version was mirrored). Those go into a per-version JSON sidecar, so
the committed record never changes while the flags can; :mod:`aliases` guards read them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import IntegrityError
from .fsutil import atomic_write
from .manifest import check_json_able, dumps_json


class FlagSidecar:
    """The flags of one version, stored next to (not inside) its manifest."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, Any]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            flags = json.loads(data)
            if not isinstance(flags, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            raise IntegrityError(f"flags file {self.path.name} is unreadable: {exc}") from exc
        return flags

    def update(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Set (or, with ``None``, remove) keys; callers hold the artifact lock."""
        check_json_able(dict(changes), "a flag value")
        flags = self.read()
        for key, value in changes.items():
            if value is None:
                flags.pop(key, None)
            else:
                flags[key] = value
        atomic_write(self.path, dumps_json(flags))
        return flags
