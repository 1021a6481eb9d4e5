"""The record of W&B offline runs that still have to be uploaded with ``wandb sync``.

An offline run's ``.wandb`` file does not hold the artifact's bytes: each manifest entry points
at the store's blob file (``add_file(..., policy="immutable")`` avoids a second copy). Until
the run is synced those blobs must stay, so every offline run is recorded here with the blobs it
points at; ``gc`` keeps them and ``sync`` knows what is left to upload. This module has no wandb
import so the store can consult it cheaply.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .fsutil import atomic_write, fsync_dir, is_temp_leftover
from .manifest import dumps_json


@dataclass(frozen=True)
class PendingRun:
    """One offline W&B run not yet uploaded."""

    run_id: str
    run_dir: str
    project: str
    artifact: str  # the store reference mirrored by the run, name:vN
    blobs: tuple[str, ...]  # sha256 of every blob the run's records point at
    created_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run_dir": self.run_dir,
            "project": self.project,
            "artifact": self.artifact,
            "blobs": list(self.blobs),
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> PendingRun:
        return cls(
            run_id=str(raw["run_id"]),
            run_dir=str(raw["run_dir"]),
            project=str(raw["project"]),
            artifact=str(raw["artifact"]),
            blobs=tuple(str(b) for b in raw["blobs"]),
            created_at=str(raw["created_at"]),
        )


class PendingRuns:
    """``<root>/mirror/pending/<run_id>.json``, moved to ``mirror/synced/`` once uploaded."""

    def __init__(self, root: Path) -> None:
        self.pending_dir = root / "mirror" / "pending"
        self.synced_dir = root / "mirror" / "synced"

    def add(self, run: PendingRun) -> None:
        atomic_write(self.pending_dir / f"{run.run_id}.json", dumps_json(run.to_json()))

    def all(self) -> list[PendingRun]:
        runs, _ = self._scan()
        return runs

    def problems(self) -> list[str]:
        _, problems = self._scan()
        return problems

    def _scan(self) -> tuple[list[PendingRun], list[str]]:
        runs: list[PendingRun] = []
        problems: list[str] = []
        if not self.pending_dir.is_dir():
            return runs, problems
        for path in sorted(self.pending_dir.glob("*.json")):
            if is_temp_leftover(path):
                continue
            try:
                runs.append(PendingRun.from_json(json.loads(path.read_bytes())))
            except (ValueError, KeyError, TypeError) as exc:
                problems.append(f"pending run record {path.name} is unreadable: {exc}")
        runs.sort(key=lambda r: (r.created_at, r.run_id))
        return runs, problems

    def blobs(self) -> set[str]:
        return {sha for run in self.all() for sha in run.blobs}

    def mark_synced(self, run_id: str) -> None:
        source = self.pending_dir / f"{run_id}.json"
        self.synced_dir.mkdir(parents=True, exist_ok=True)
        os.replace(source, self.synced_dir / source.name)
        fsync_dir(self.synced_dir)
        fsync_dir(self.pending_dir)

    def forget(self, run_id: str) -> None:
        """Drop the record of a run whose directory is gone: nothing is left to upload."""
        path = self.pending_dir / f"{run_id}.json"
        try:
            path.unlink()
        except FileNotFoundError:
            return
        fsync_dir(self.pending_dir)

    def temp_leftovers(self) -> list[Path]:
        return [
            p
            for d in (self.pending_dir, self.synced_dir)
            if d.is_dir()
            for p in d.iterdir()
            if is_temp_leftover(p)
        ]
