"""Where everything lives under a store root. One place, so the layout can be read in one go:

    <root>/
      .lock                                   store lock: writers share it, gc takes it alone
      blobs/sha256/<ab>/<sha256>              file contents, read-only, shared between versions
      collections/<name>/
        .lock                                 artifact lock: version numbers and alias moves
        versions/v<N>.json                    manifests; publishing one commits version N
        aliases.jsonl                         append-only alias moves; aliases are their fold
        flags/v<N>.json                       mutable flags of version N (e.g. failed checks)
      mirror/pending/<run_id>.json            W&B offline runs not yet synced (and their blobs)
      mirror/synced/<run_id>.json             the same records once ``wandb sync`` succeeded

Temporary files are named ``.tmp-*`` in the directory of the file they will replace.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import InvalidNameError
from .names import validate_name

_MANIFEST_RE = re.compile(r"v(0|[1-9][0-9]*)\.json")


class StoreLayout:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def store_lock(self) -> Path:
        return self.root / ".lock"

    @property
    def collections(self) -> Path:
        return self.root / "collections"

    def collection(self, name: str) -> Path:
        return self.collections / validate_name(name)

    def artifact_lock(self, name: str) -> Path:
        return self.collection(name) / ".lock"

    def versions_dir(self, name: str) -> Path:
        return self.collection(name) / "versions"

    def manifest(self, name: str, version: int) -> Path:
        return self.versions_dir(name) / f"v{version}.json"

    def alias_log(self, name: str) -> Path:
        return self.collection(name) / "aliases.jsonl"

    def flags(self, name: str, version: int) -> Path:
        return self.collection(name) / "flags" / f"v{version}.json"

    def committed_versions(self, name: str) -> list[int]:
        """Version numbers whose manifest was published, ascending."""
        directory = self.versions_dir(name)
        if not directory.is_dir():
            return []
        found = (_MANIFEST_RE.fullmatch(p.name) for p in directory.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def names(self) -> list[str]:
        """Artifacts with at least one committed version (a killed first write leaves none)."""
        if not self.collections.is_dir():
            return []
        found = []
        for path in self.collections.iterdir():
            try:
                if path.is_dir() and self.committed_versions(path.name):
                    found.append(path.name)
            except InvalidNameError:
                continue  # a folder someone else put here; not an artifact
        return sorted(found)
