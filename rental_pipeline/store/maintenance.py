"""Keeping a store healthy: ``verify`` finds damage, ``gc`` removes what nothing needs.

What a killed writer leaves behind (``.tmp-*`` files, blobs written before its manifest was
published, a collection with no committed version) is invisible to readers, so ``verify`` does not
count it as a problem; ``gc`` removes it. The exception is the end of an alias log: part of a line
there is what a crash mid-move leaves, but also what cutting the log short leaves, which would undo
its last move unseen, so ``verify`` reports it (and a last line without its newline) for a human
to judge; the next move repairs either. ``gc`` never removes an aliased version, a version another
kept version was made from (lineage stays resolvable), or a blob the caller says is still needed
beside the store (``keep_blobs``: say, files that runs recorded elsewhere point at). On object
storage, where no lock keeps writers out, it also leaves every unreferenced blob that changed
within the grace period (default an hour): a writer on another machine may be about to commit a
version that uses it (writers refresh the time of an old blob they reuse). A caller that keeps
records of its own checks them with ``verify_store(..., also=...)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from .aliases import AliasLog
from .blobs import FileHashes
from .errors import ArtifactNotFoundError, IntegrityError, InvalidNameError
from .manifest import VersionManifest
from .names import parse_ref, version_ref
from .store import ArtifactStore

#: Why the stored bytes named by a sha256 are not those bytes, or None (see :func:`verify_store`).
BlobCheck = Callable[[str], str | None]


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
    kept_blobs: int = 0  # unreferenced, but the caller still needs them (keep_blobs)
    kept_recent_blobs: int = 0  # unreferenced, but changed within the grace period
    grace_seconds: float = 0.0
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
        lines += self.kept_lines()
        if self.kept_recent_blobs:
            lines.append(
                f"  kept {self.kept_recent_blobs} unreferenced blob(s) younger than the "
                f"{self.grace_seconds:g} s grace period (a writer may be about to use them)"
            )
        if self.skipped_blob_cleanup:
            lines.append(f"  blob cleanup skipped: {self.skipped_blob_cleanup}")
        return "\n".join(lines)

    def kept_lines(self) -> list[str]:
        """What was kept for the caller; a caller's report class says it in its own words."""
        if not self.kept_blobs:
            return []
        return [f"  kept {self.kept_blobs} blob(s) still needed beside the store"]


def verify_store(
    store: ArtifactStore, *, also: Callable[[BlobCheck], Iterable[Problem]] | None = None
) -> VerifyReport:
    """Check every version, blob and alias: damage found, nothing changed.

    ``also`` checks what a caller keeps beside the store; it is given the blob check (each blob is
    read once whoever asks) and returns the problems it found."""
    report = VerifyReport()
    hashed: dict[str, FileHashes | None] = {}  # each blob is read once; None when missing

    def check_blob(sha256: str, expected_digest: str | None, size: int | None) -> str | None:
        if sha256 not in hashed:
            try:
                hashed[sha256] = store.blobs.hashes(sha256)
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
                manifest = store.read_manifest(name, version)
            except (IntegrityError, ArtifactNotFoundError) as exc:
                report.problems.append(Problem(str(exc), ref))
                continue
            manifests.append(manifest)
            for entry in manifest.files:
                problem = check_blob(entry.sha256, entry.digest, entry.size)
                if problem:
                    report.problems.append(Problem(problem, ref, entry.path))
            try:
                store.read_flags(name, version)
            except IntegrityError as exc:
                report.problems.append(Problem(str(exc), ref))
        log = AliasLog(store.backend, store.layout.alias_log(name)).read()
        # A last line without its newline too: it may be the last move cut short (see the module).
        report.problems += [Problem(p, name) for p in (*log.problems(), *log.tail_problems())]
        try:
            aliases = store.aliases(name)
        except IntegrityError:
            continue  # already reported line by line
        for alias, target in sorted(aliases.items()):
            if target not in known[name]:
                report.problems.append(Problem(f"alias {alias!r} points at missing v{target}", name))

    for manifest in manifests:
        for ref in manifest.inputs:
            parsed = parse_ref(ref)
            if parsed.version is None or parsed.version not in known.get(parsed.name, set()):
                report.problems.append(Problem(f"input {ref} is missing (lineage broken)", manifest.ref))

    if also is not None:
        report.problems += also(lambda sha256: check_blob(sha256, None, None))
    return report


def collect_garbage(
    store: ArtifactStore,
    keep: int | None = None,
    *,
    dry_run: bool = False,
    grace_seconds: float | None = None,
    keep_blobs: Callable[[], Collection[str]] | Collection[str] = (),
    report: GcReport | None = None,
) -> GcReport:
    """Remove leftovers and orphan blobs; with ``keep``, also old unaliased versions.

    ``keep_blobs`` names (by sha256) blobs no version refers to that the caller still needs; a
    callable is asked once the store is locked and old versions are gone, so what it names is
    current. On object storage only blobs unchanged for ``grace_seconds`` go (see the module); a
    shorter grace period is safe only while nothing else writes to the store. ``report``: the report to fill in, of a
    caller's subclass of :class:`GcReport`."""
    if keep is not None and keep < 1:
        raise ValueError(
            "keep must be at least 1: the newest version of each artifact always stays"
        )
    backend = store.backend
    grace = backend.default_grace_seconds if grace_seconds is None else float(grace_seconds)
    if grace < 0:
        raise ValueError("grace_seconds cannot be negative")
    report = report if report is not None else GcReport()
    report.dry_run, report.grace_seconds = dry_run, grace
    if not backend.exists():
        return report
    with store.exclusive():
        # Manifests are read before blobs are listed: a version committed after this point uses
        # blobs that were written or refreshed recently, which the grace period keeps.
        manifests: dict[tuple[str, int], VersionManifest | None] = {}
        for name in store.names():
            for version, info in store.layout.committed(name).items():
                manifests[(name, version)] = store.try_read_manifest(name, version, info)

        if keep is not None:
            doomed = _unneeded_versions(store, manifests, keep)
            for name, version in sorted(doomed):
                report.removed_versions.append(version_ref(name, version))
                if not dry_run:
                    backend.delete(store.layout.manifest(name, version))  # the un-commit comes first
                    backend.delete(store.layout.flags(name, version))
                del manifests[(name, version)]

        needed = set(keep_blobs() if callable(keep_blobs) else keep_blobs)

        if any(m is None for m in manifests.values()):
            report.skipped_blob_cleanup = (
                "some manifests are unreadable (run verify); no blob was removed"
            )
        else:
            referenced = {entry.sha256 for m in manifests.values() if m for entry in m.files}
            for info in list(store.blobs.stored()):
                sha256 = info.key.rsplit("/", 1)[-1]
                if sha256 in referenced:
                    continue
                if sha256 in needed:
                    report.kept_blobs += 1
                    continue
                if grace > 0:
                    # Looked at again just before removing: a writer may have refreshed it since.
                    fresh = backend.info(info.key)
                    if fresh is None:
                        continue
                    if time.time() - fresh.modified < grace:
                        report.kept_recent_blobs += 1
                        continue
                report.removed_blobs += 1
                if dry_run:
                    report.freed_bytes += info.size
                else:
                    report.freed_bytes += store.blobs.remove(sha256)

        for key in list(backend.leftovers()):
            report.removed_temp_files += 1
            if not dry_run:
                backend.delete(key)

        for name in backend.children("collections/"):
            if _is_empty_collection(store, name):
                report.removed_empty_artifacts.append(name)
                if not dry_run:
                    _remove_collection(store, name)
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


def _is_empty_collection(store: ArtifactStore, name: str) -> bool:
    """No committed version, no alias history: left by a writer killed before its first commit."""
    try:
        if store.layout.committed_versions(name):
            return False
        log = store.backend.info(store.layout.alias_log(name))
    except InvalidNameError:
        return False  # not a folder the store made
    return log is None or log.size == 0


def _remove_collection(store: ArtifactStore, name: str) -> None:
    store.backend.remove_prefix(store.layout.collection_key(name) + "/")
