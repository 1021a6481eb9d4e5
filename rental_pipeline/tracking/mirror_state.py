"""What W&B already has of the store's mutable state: alias moves and failed-check marks.

Versions never change once written, but aliases move (``prod``, ``reference``, rollbacks) and
checks can fail after a version was mirrored. The store's alias log is the queue of moves: per
artifact this keeps a cursor (how many of its moves W&B has been brought up to) and, per mirrored
version, the failed checks last pushed to W&B. ``sync`` compares both with the store and applies
the difference, then advances them; a sync that fails part way leaves them where they were, so
the next one retries.

It also keeps the W&B server details the last sync learnt (the key's default entity, the UI's
address), so the pipeline can link a run's page without importing wandb or asking the network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rental_pipeline.store import IntegrityError
from rental_pipeline.store.fsutil import atomic_write
from rental_pipeline.store.manifest import dumps_json
from rental_pipeline.store.names import validate_name

from .layout import MIRROR_STATE, WANDB_SERVER, mirror_path


class MirrorState:
    """``<root>/mirror/state/<artifact>.json`` and ``<root>/mirror/server.json``."""

    def __init__(self, root: Path) -> None:
        self.directory = mirror_path(root, MIRROR_STATE)
        self.server_file = mirror_path(root, WANDB_SERVER)

    def _path(self, name: str) -> Path:
        return self.directory / f"{validate_name(name)}.json"

    def _read(self, path: Path) -> dict[str, Any]:
        try:
            raw = json.loads(path.read_bytes())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise IntegrityError(f"W&B mirror state {path.name} is unreadable: {exc}") from exc
        if not isinstance(raw, dict):
            raise IntegrityError(f"W&B mirror state {path.name} is not a JSON object")
        return raw

    def moves_applied(self, name: str) -> int:
        """How many moves of ``name``'s alias log W&B has been brought up to."""
        return int(self._read(self._path(name)).get("moves_applied", 0))

    def set_moves_applied(self, name: str, count: int) -> None:
        state = self._read(self._path(name))
        state["moves_applied"] = count
        atomic_write(self._path(name), dumps_json(state))

    def pushed_checks(self, name: str) -> dict[int, Any]:
        """Version number -> the failed checks W&B shows for it (absent: none shown)."""
        raw = self._read(self._path(name)).get("failed_checks", {})
        return {int(version): value for version, value in raw.items()}

    def set_pushed_checks(self, name: str, version: int, failed: Any) -> None:
        state = self._read(self._path(name))
        pushed = dict(state.get("failed_checks", {}))
        if failed:
            pushed[str(version)] = failed
        else:
            pushed.pop(str(version), None)
        state["failed_checks"] = pushed
        atomic_write(self._path(name), dumps_json(state))

    def server(self, base_url: str) -> dict[str, str]:
        """What the last sync against ``base_url`` learnt: ``entity`` and ``app_url``."""
        known = self._read(self.server_file).get(base_url.rstrip("/"), {})
        return {str(k): str(v) for k, v in known.items() if v}

    def set_server(self, base_url: str, details: dict[str, str]) -> None:
        servers = self._read(self.server_file)
        servers[base_url.rstrip("/")] = details
        atomic_write(self.server_file, dumps_json(servers))
