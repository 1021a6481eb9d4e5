"""Keeping a store healthy: ``verify`` finds damage, ``gc`` removes what nothing needs.

What a killed writer leaves behind (``.tmp-*`` files, blobs written before its manifest was
published, a collection with no committed version) is invisible to readers, so ``verify`` does not
count it as a problem; ``gc`` removes it. ``gc`` never removes an aliased version, a version another
kept version was made from (lineage stays resolvable), or a blob an unsynced W&B offline run
points at.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .aliases import AliasLog
from .blobs import remove_file
from .digest import FileHashes, hash_file
from .errors import ArtifactNotFoundError, IntegrityError
from .flags import FlagSidecar
from .fsutil import fsync_dir, is_temp_leftover
from .manifest import VersionManifest
from .names import parse_ref, version_ref
from .pending import PendingRuns

if TYPE_CHECKING:
    from .store import ArtifactStore


@dataclass(frozen=True)
class Problem:
    """Something wrong in the store; ``ref`` and ``file`` say where, when known."""

    message: str
    ref: str | None = None
    file: str | None = None

    def __str__(self) -> str:
        where = " ".join(
            part for part in (self.ref, repr(self.file) if self.file else None) if part
        )
        return f"{where}: {self.message}" if where else self.message


@dataclass
class VerifyReport:
    problems: list[Problem] = field(default_factory=list)
    versions_checked: int = 0
    blobs_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        head = f"checked {self.versions_checked} versions and {self.blobs_checked} blobs"
        if self.ok:
            return f"{head}: no problems"
        return "\n".join(
            [f"{head}: {len(self.problems)} problem(s)", *(f"  {p}" for p in self.problems)]
        )


@dataclass
class GcReport:
    removed_versions: list[str] = field(default_factory=list)
    removed_blobs: int = 0
    freed_bytes: int = 0
    removed_temp_files: int = 0
    removed_empty_artifacts: list[str] = field(default_factory=list)
    forgotten_runs: list[str] = field(default_factory=list)
    kept_pending_blobs: int = 0
    skipped_blob_cleanup: str | None = None
    dry_run: bool = False

    def __str__(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        lines = [
            f"{verb} {len(self.removed_versions)} version(s), {self.removed_blobs} orphan blob(s) "
            f"({self.freed_bytes} bytes), {self.removed_temp_files} temporary file(s)",
        ]
        lines += [f"  version {ref}" for ref in self.removed_versions]
        if self.removed_empty_artifacts:
            lines.append(f"  empty artifacts: {', '.join(self.removed_empty_artifacts)}")
        if self.forgotten_runs:
            lines.append(
                f"  forgot offline runs whose directory is gone: {', '.join(self.forgotten_runs)}"
            )
        if self.kept_pending_blobs:
            lines.append(
                f"  kept {self.kept_pending_blobs} blob(s) that unsynced W&B offline runs point at"
            )
        if self.skipped_blob_cleanup:
            lines.append(f"  blob cleanup skipped: {self.skipped_blob_cleanup}")
        return "\n".join(lines)


def verify_store(store: ArtifactStore) -> VerifyReport:
    report = VerifyReport()
    hashed: dict[str, FileHashes | None] = {}  # each blob is read once; None when missing

    def check_blob(sha256: str, expected_digest: str | None, size: int | None) -> str | None:
        if sha256 not in hashed:
            try:
                hashed[sha256] = hash_file(store.blobs.path(sha256))
                report.blobs_checked += 1
            except FileNotFoundError:
                hashed[sha256] = None
        hashes = hashed[sha256]
        if hashes is None:
            return "stored bytes are missing"
        if hashes.sha256 != sha256:
            return f"stored bytes were altered (sha256 {hashes.sha256[:16]}...)"
        if expected_digest is not None and hashes.entry_digest != expected_digest:
            return f"W&B entry digest {expected_digest} does not match the bytes"
        if size is not None and hashes.size != size:
            return f"size {size} does not match the bytes ({hashes.size})"
        return None

    known: dict[str, set[int]] = {}
    manifests: list[VersionManifest] = []
    for name in store.names():
        known[name] = set(store.layout.committed_versions(name))
        for version in sorted(known[name]):
            ref = version_ref(name, version)
            report.versions_checked += 1
            try:
                manifest = store._read_manifest(name, version)
            except (IntegrityError, ArtifactNotFoundError) as exc:
                report.problems.append(Problem(str(exc), ref))
                continue
            manifests.append(manifest)
            for entry in manifest.files:
                problem = check_blob(entry.sha256, entry.digest, entry.size)
                if problem:
                    report.problems.append(Problem(problem, ref, entry.path))
            try:
                FlagSidecar(store.layout.flags(name, version)).read()
            except IntegrityError as exc:
                report.problems.append(Problem(str(exc), ref))
        log = AliasLog(store.layout.alias_log(name))
        report.problems += [Problem(p, name) for p in log.problems()]
        try:
            aliases = log.current()
        except IntegrityError:
            continue  # already reported line by line
        for alias, target in sorted(aliases.items()):
            if target not in known[name]:
                report.problems.append(
                    Problem(f"alias {alias!r} points at missing v{target}", name)
                )

    for manifest in manifests:
        for ref in manifest.inputs:
            parsed = parse_ref(ref)
            if parsed.version is None or parsed.version not in known.get(parsed.name, set()):
                report.problems.append(
                    Problem(f"input {ref} is missing (lineage broken)", manifest.ref)
                )

    pending = PendingRuns(store.root)
    report.problems += [Problem(p) for p in pending.problems()]
    for run in pending.all():
        for sha256 in run.blobs:
            problem = check_blob(sha256, None, None)
            if problem:
                report.problems.append(
                    Problem(
                        f"blob {sha256[:16]}... of unsynced W&B run {run.run_id}: {problem}",
                        run.artifact,
                    )
                )
    return report


def collect_garbage(store: ArtifactStore, *, keep: int | None, dry_run: bool) -> GcReport:
    if keep is not None and keep < 1:
        raise ValueError(
            "keep must be at least 1: the newest version of each artifact always stays"
        )
    report = GcReport(dry_run=dry_run)
    if not store.root.is_dir():
        return report
    with store._exclusive():
        manifests: dict[tuple[str, int], VersionManifest | None] = {}
        for name in store.names():
            for version in store.layout.committed_versions(name):
                manifests[(name, version)] = store._try_read_manifest(name, version)

        if keep is not None:
            doomed = _unneeded_versions(store, manifests, keep)
            for name, version in sorted(doomed):
                report.removed_versions.append(version_ref(name, version))
                if not dry_run:
                    remove_file(store.layout.manifest(name, version))  # the un-commit comes first
                    remove_file(store.layout.flags(name, version))
                del manifests[(name, version)]

        pending = PendingRuns(store.root)
        for run in pending.all():
            if not run.uploaded and not Path(run.run_dir).is_dir():
                report.forgotten_runs.append(run.run_id)
                if not dry_run:
                    pending.forget(run.run_id)
        pending_blobs = {
            sha
            for run in pending.all()
            for sha in run.blobs
            if run.run_id not in report.forgotten_runs
        }

        if any(m is None for m in manifests.values()):
            report.skipped_blob_cleanup = (
                "some manifests are unreadable (run verify); no blob was removed"
            )
        else:
            referenced = {entry.sha256 for m in manifests.values() if m for entry in m.files}
            for sha256 in list(store.blobs.all()):
                if sha256 in referenced:
                    continue
                if sha256 in pending_blobs:
                    report.kept_pending_blobs += 1
                    continue
                report.removed_blobs += 1
                if dry_run:
                    report.freed_bytes += store.blobs.path(sha256).stat().st_size
                else:
                    report.freed_bytes += store.blobs.remove(sha256)

        for path in _temp_leftovers(store.root):
            report.removed_temp_files += 1
            if not dry_run:
                remove_file(path)

        if store.layout.collections.is_dir():
            for collection in sorted(store.layout.collections.iterdir()):
                if collection.is_dir() and _is_empty_collection(collection):
                    report.removed_empty_artifacts.append(collection.name)
                    if not dry_run:
                        shutil.rmtree(collection)
                        fsync_dir(collection.parent)
    return report


def _unneeded_versions(
    store: ArtifactStore, manifests: dict[tuple[str, int], VersionManifest | None], keep: int
) -> set[tuple[str, int]]:
    """Versions that are neither among the newest ``keep``, aliased, nor inputs of kept ones."""
    kept: set[tuple[str, int]] = set()
    by_name: dict[str, list[int]] = {}
    for name, version in manifests:
        by_name.setdefault(name, []).append(version)
    for name, versions in by_name.items():
        kept.update((name, v) for v in sorted(versions)[-keep:])
        kept.update((name, v) for v in store.aliases(name).values())
    kept.update(
        key for key, manifest in manifests.items() if manifest is None
    )  # unreadable: leave for a human
    frontier = list(kept)
    while frontier:
        manifest = manifests.get(frontier.pop())
        for ref in manifest.inputs if manifest else ():
            parsed = parse_ref(ref)
            if parsed.version is None:
                continue
            key = (parsed.name, parsed.version)
            if key in manifests and key not in kept:
                kept.add(key)
                frontier.append(key)
    return set(manifests) - kept


def _temp_leftovers(root: Path) -> list[Path]:
    found = []
    for directory, _dirs, files in os.walk(root):
        found += [Path(directory) / f for f in files if is_temp_leftover(Path(f))]
    return found


def _is_empty_collection(collection: Path) -> bool:
    """No committed version, no alias history: left by a writer killed before its first commit."""
    versions = collection / "versions"
    if versions.is_dir() and any(
        p.name.endswith(".json") and not is_temp_leftover(p) for p in versions.iterdir()
    ):
        return False
    log = collection / "aliases.jsonl"
    return not (log.exists() and log.stat().st_size > 0)
