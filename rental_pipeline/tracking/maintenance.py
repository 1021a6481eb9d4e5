"""``verify`` and ``gc`` of a store whose versions are mirrored to W&B.

An offline run's records point at the store's blob files (no copy), so until ``sync`` uploads the
run, ``gc`` must keep the blobs it uses even when no version does any more: the store's ``gc`` is
handed them (``keep_blobs``). A run whose folder is gone is forgotten, since nothing is left to
upload; runs that will never be synced are dropped on request (``drop_unsynced_runs``), records
and ``offline-run-*`` folders, and then so are the blobs only they kept. ``verify`` also checks the
run records and the blobs they point at.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rental_pipeline.store import ArtifactStore, GcReport, Problem, VerifyReport
from rental_pipeline.store import collect_garbage as collect_store_garbage
from rental_pipeline.store import verify_store as verify_store_only
from rental_pipeline.store.maintenance import BlobCheck

from .pending import PendingRuns


@dataclass
class MirrorGcReport(GcReport):
    forgotten_runs: list[str] = field(default_factory=list)
    dropped_runs: list[str] = field(default_factory=list)

    @property
    def kept_pending_blobs(self) -> int:
        """Blobs kept because unsynced W&B offline runs point at them."""
        return self.kept_blobs

    def kept_lines(self) -> list[str]:
        lines = []
        if self.forgotten_runs:
            lines.append(f"  forgot offline runs whose directory is gone: {', '.join(self.forgotten_runs)}")
        if self.dropped_runs:
            lines.append(
                f"  {'would drop' if self.dry_run else 'dropped'} {len(self.dropped_runs)} unsynced W&B "
                f"offline run(s) and their folders: {', '.join(self.dropped_runs)}"
            )
        if self.kept_blobs:
            lines.append(
                f"  kept {self.kept_blobs} blob(s) that unsynced W&B offline runs point at "
                "(--drop-unsynced-runs frees them if those runs will never be synced)"
            )
        return lines


def verify_store(store: ArtifactStore) -> VerifyReport:
    """Check every version, blob, alias and pending W&B run: damage found, nothing changed."""
    pending = PendingRuns(store.root)

    def pending_problems(check_blob: BlobCheck) -> Iterator[Problem]:
        yield from (Problem(problem) for problem in pending.problems())
        for run in pending.all():
            for sha256 in run.blobs:
                problem = check_blob(sha256)
                if problem:
                    yield Problem(f"blob {sha256[:16]}... of unsynced W&B run {run.run_id}: {problem}", run.artifact)

    return verify_store_only(store, also=pending_problems)


def collect_garbage(
    store: ArtifactStore,
    keep: int | None = None,
    *,
    dry_run: bool = False,
    grace_seconds: float | None = None,
    drop_unsynced_runs: bool = False,
) -> MirrorGcReport:
    """The store's ``gc`` (see :func:`rental_pipeline.store.collect_garbage`), keeping the blobs of
    unsynced W&B offline runs; with ``drop_unsynced_runs``, those runs go first.

    The run records are pruned once the store is locked (when it asks which blobs to keep), so a
    mirror recording a run meanwhile either finishes first or waits for ``gc``."""
    report = MirrorGcReport()
    pending = PendingRuns(store.root)

    def prune_runs_and_list_their_blobs() -> set[str]:
        for run in pending.all():
            if not run.uploaded and not Path(run.run_dir).is_dir():
                report.forgotten_runs.append(run.run_id)
                if not dry_run:
                    pending.forget(run.run_id)
            elif drop_unsynced_runs:
                report.dropped_runs.append(run.run_id)
                if not dry_run:
                    pending.forget(run.run_id)  # first: a folder left by a crash is only a folder
                    _remove_offline_run(Path(run.run_dir))
        gone = {*report.forgotten_runs, *report.dropped_runs}
        return {sha for run in pending.all() for sha in run.blobs if run.run_id not in gone}

    collect_store_garbage(
        store,
        keep,
        dry_run=dry_run,
        grace_seconds=grace_seconds,
        keep_blobs=prune_runs_and_list_their_blobs,
        report=report,
    )
    return report


def _remove_offline_run(run_dir: Path) -> None:
    """Delete a W&B offline run folder, and nothing that is not one."""
    if run_dir.name.startswith("offline-run-") and run_dir.is_dir():
        shutil.rmtree(run_dir)
