"""The ledger of W&B runs the mirror made: what each one still needs before W&B shows it whole.

Every run is written to disk first (an ``offline-run-*`` folder) and recorded here. A run is
*pending* until ``sync`` has uploaded it with ``wandb sync``, learnt which W&B artifact version
holds the store version it logged, and declared its inputs on W&B (``use_artifact``), which an
offline run cannot do; then its record moves to ``synced/``. Each step is saved in the record as
it succeeds, so a sync that stops half way (timeout, no network) resumes where it stopped.

An offline run's ``.wandb`` file does not hold the artifact's bytes: each manifest entry points
at the store's blob file (``add_file(..., policy="immutable")`` avoids a second copy). Until
the run is uploaded those blobs must stay, so the record lists them and ``gc`` keeps them; the
list is emptied once the upload succeeded, and the mirror's ``gc`` hands the store the blobs of
the runs still pending to keep (:mod:`.maintenance`). This module has no wandb import, so that
is cheap.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rental_pipeline.store.fsutil import atomic_write, fsync_dir, is_temp_leftover
from rental_pipeline.store.manifest import dumps_json

from .layout import PENDING_RUNS, SYNCED_RUNS, mirror_path

_RUN_ID = re.compile(r"[a-z0-9]{1,64}")
VERSION_RUN = "version"  # a run that logs one store version as its output artifact
TRIAL_RUN = "trial"  # a run with metrics only (one trial of a sweep); ``artifact`` is its parent


@dataclass(frozen=True)
class PendingRun:
    """One W&B run the mirror made, and how far its upload has gone."""

    run_id: str
    run_dir: str
    project: str
    artifact: str  # the store reference mirrored by the run, name:vN
    blobs: tuple[str, ...]  # sha256 of every blob the run's records point at, until uploaded
    created_at: str
    kind: str = VERSION_RUN
    entity: str | None = None  # as configured when the run was made; None: the key's default
    digest: str | None = None  # the logged artifact's digest (version runs)
    inputs: tuple[str, ...] = ()  # store versions to declare with use_artifact, name:vN
    uploaded: bool = False
    run_path: str | None = None  # entity/project/run_id on W&B, once uploaded
    wandb_artifact: str | None = None  # entity/project/name:vK that holds ``artifact`` on W&B
    linked: tuple[str, ...] = ()  # inputs already declared on W&B
    unlinked: tuple[str, ...] = ()  # inputs W&B will never have (never mirrored): edges it lacks

    @property
    def complete(self) -> bool:
        """Uploaded, its artifact found on W&B and every input declared: nothing left to do."""
        found = self.kind != VERSION_RUN or self.wandb_artifact is not None
        return self.uploaded and found and set(self.inputs) <= {*self.linked, *self.unlinked}

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run_dir": self.run_dir,
            "project": self.project,
            "artifact": self.artifact,
            "blobs": list(self.blobs),
            "created_at": self.created_at,
            "kind": self.kind,
            "entity": self.entity,
            "digest": self.digest,
            "inputs": list(self.inputs),
            "uploaded": self.uploaded,
            "run_path": self.run_path,
            "wandb_artifact": self.wandb_artifact,
            "linked": list(self.linked),
            "unlinked": list(self.unlinked),
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
            kind=str(raw.get("kind") or VERSION_RUN),
            entity=raw.get("entity") or None,
            digest=raw.get("digest") or None,
            inputs=tuple(str(i) for i in raw.get("inputs") or ()),
            uploaded=bool(raw.get("uploaded", False)),
            run_path=raw.get("run_path") or None,
            wandb_artifact=raw.get("wandb_artifact") or None,
            linked=tuple(str(i) for i in raw.get("linked") or ()),
            unlinked=tuple(str(i) for i in raw.get("unlinked") or ()),
        )

    def with_changes(self, **changes: Any) -> PendingRun:
        return replace(self, **changes)


class PendingRuns:
    """``<root>/mirror/pending/<run_id>.json``, moved to ``mirror/synced/`` once complete."""

    def __init__(self, root: Path) -> None:
        self.pending_dir = mirror_path(root, PENDING_RUNS)
        self.synced_dir = mirror_path(root, SYNCED_RUNS)

    def add(self, run: PendingRun) -> None:
        atomic_write(self.pending_dir / f"{run.run_id}.json", dumps_json(run.to_json()))

    update = add  # a pending record is replaced whole, atomically

    def update_synced(self, run: PendingRun) -> None:
        atomic_write(self.synced_dir / f"{run.run_id}.json", dumps_json(run.to_json()))

    def all(self) -> list[PendingRun]:
        runs, _ = self._scan(self.pending_dir)
        return runs

    def synced(self) -> list[PendingRun]:
        runs, _ = self._scan(self.synced_dir)
        return runs

    def problems(self) -> list[str]:
        _, problems = self._scan(self.pending_dir)
        return problems

    def _scan(self, directory: Path) -> tuple[list[PendingRun], list[str]]:
        runs: list[PendingRun] = []
        problems: list[str] = []
        if not directory.is_dir():
            return runs, problems
        for path in sorted(directory.glob("*.json")):
            if is_temp_leftover(path):
                continue
            try:
                run = PendingRun.from_json(json.loads(path.read_bytes()))
                if not _RUN_ID.fullmatch(run.run_id) or path.stem != run.run_id:
                    raise ValueError(f"run id {run.run_id!r} is not a W&B run id of this record")
                if not Path(run.run_dir).is_absolute():
                    raise ValueError(f"run folder {run.run_dir!r} is not an absolute path")
                runs.append(run)
            except (ValueError, KeyError, TypeError) as exc:
                problems.append(f"W&B run record {path.name} is unreadable: {exc}")
        runs.sort(key=lambda r: (r.created_at, r.run_id))
        return runs, problems

    def mark_synced(self, run: PendingRun | str) -> None:
        """Move a record to ``synced/`` (with its final state when a record is given)."""
        run_id = run if isinstance(run, str) else run.run_id
        if not isinstance(run, str):
            self.update(run)
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
