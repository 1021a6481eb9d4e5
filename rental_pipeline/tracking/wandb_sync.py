"""Bringing W&B up to date with the store: upload runs, connect lineage, move aliases.

The store is the record; W&B shows it. A sync does, in order, with one time budget:

1. uploads the runs the mirror wrote to disk (``wandb sync``), checking W&B's ``.synced`` marker
   rather than trusting the exit code (it is 0 even when nothing was uploaded);
2. finds which W&B version holds each uploaded store version (by run and digest, since W&B
   numbers versions itself and they need not match the store's);
3. declares each run's exact input versions with ``use_artifact``, which an offline run cannot
   do, so W&B's lineage graph gets the store's edges;
4. replays the alias moves W&B has not seen (``prod``, ``reference``, rollbacks, by the pipeline
   or by hand) and links the ``prod`` model into the model registry collection;
5. marks versions whose checks failed (metadata ``failed_checks`` and tag ``failed-checks``), and
   clears the mark when they pass again (steps 4 and 5 in :mod:`.wandb_replay`; the report and
   the registry setting in :mod:`.sync_report`).

Every step is saved as it succeeds (the run ledger, the mirror state), so running sync again does
only what is left; what failed is reported with the reason and retried next time. W&B manages
its own ``latest`` (the version logged last), so store ``latest`` moves are not replayed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from rental_pipeline.settings import Settings
from rental_pipeline.store import LATEST, ArtifactStore, StoreError
from rental_pipeline.store.fsutil import ensure_dir

from .layout import SYNC_LOCK, mirror_path
from .mirror_state import MirrorState
from .pending import VERSION_RUN, PendingRun, PendingRuns
from .sync_report import DEFAULT_TIMEOUT, RegistryLink, SyncReport, has_credentials
from .wandb_replay import Replay, failed_checks
from .wandb_server import ServerCallError, ServerInfo, SyncTimeoutError, WandbApi, WandbServer


class _OutOfTime(Exception):
    """The budget ran out; carries what the sync was about to wait for."""


class WandbSync(Replay):
    """One sync of ``store``'s mirror against ``server`` (the real W&B by default)."""

    def __init__(
        self,
        store: ArtifactStore,
        server: WandbServer | None = None,
        *,
        registry: RegistryLink | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        on_progress: Callable[[str], None] | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.store = store
        # The caller's settings (default: this process's, read now): the server and the API key's presence.
        self.settings = settings if settings is not None else Settings.from_environment()
        self.server: WandbServer = server or WandbApi(
            http_timeout=min(30.0, timeout), base_url=self.settings.wandb_base_url
        )
        self.registry = registry
        self.timeout = timeout
        self.ledger = PendingRuns(store.root)
        self.state = MirrorState(store.root)
        self._say = on_progress or (lambda _message: None)
        self._deadline = 0.0

    # -- what is waiting, without asking W&B -------------------------------------------------

    def queued_moves(self) -> int:
        """Alias moves (other than ``latest``) W&B has not been brought up to."""
        count = 0
        for name in self.store.names():
            moves = self.store.alias_log(name)[self.state.moves_applied(name) :]
            count += sum(1 for move in moves if move.alias != LATEST)
        return count

    def needed(self) -> bool:
        """Whether a sync has anything to do: runs to upload or link, alias moves, check marks."""
        if self.ledger.all() or self.queued_moves():
            return True
        on_wandb = self._index()
        for name in self.store.names():
            pushed = self.state.pushed_checks(name)
            for version in self.store.history(name):
                if version.ref in on_wandb and failed_checks(version.flags) != pushed.get(version.version):
                    return True
        return False

    # -- the sync ------------------------------------------------------------------------------

    def run(self, *, force: bool = False, upload: bool = True) -> SyncReport:
        """Upload, link, apply aliases and check marks, within ``timeout`` seconds in all.

        Without ``WANDB_API_KEY`` nothing is attempted (``wandb sync`` would stop to ask for a
        login) and the report says what waits; ``force`` tries anyway, e.g. after ``wandb login``.
        ``upload=False`` leaves runs where they are and only applies aliases and marks.
        """
        started = time.monotonic()
        self._deadline = started + self.timeout
        report = SyncReport(pending=self.ledger.all(), queued_moves=self.queued_moves())
        if not self.needed():
            return report
        if not (force or has_credentials(settings=self.settings)):
            report.skipped_reason = (
                "no W&B credentials (WANDB_API_KEY is not set); the runs stay pending and their "
                "blobs are kept. Set WANDB_API_KEY, or log in and pass --force"
            )
            return report
        try:
            with self._exclusive():
                self._sync(report, upload=upload)
        except _OutOfTime as waiting:
            report.failed.append(
                ("timeout", f"gave up after {self.timeout:.0f} s while {waiting}; what is left stays queued")
            )
        finally:
            self.server.close()
        report.seconds = time.monotonic() - started
        return report

    def _sync(self, report: SyncReport, *, upload: bool) -> None:
        info = self._call(
            f"asking {self.server.base_url} who the API key belongs to",
            lambda t: self.server.describe(timeout=t), report, what=self.server.base_url,
        )
        if info is _FAILED:
            return
        report.server = info
        self.state.set_server(info.base_url, {"entity": info.entity, "app_url": info.app_url})

        self._backfill(info, report)
        runs = [self._legacy(run) for run in self.ledger.all()]
        uploaded_now: set[str] = set()
        if upload:
            runs, uploaded_now = self._upload(runs, info, report)
        runs = [self._find_artifact(run, report) for run in runs]
        index = self._index()
        for run in runs:
            run = self._link(run, index, report)
            if run.complete:
                self.ledger.mark_synced(run)
                report.synced.append(run)
        self._apply_aliases(index, uploaded_now, report)
        self._push_checks(index, report)

    # -- steps ---------------------------------------------------------------------------------

    def _upload(
        self, runs: list[PendingRun], info: ServerInfo, report: SyncReport
    ) -> tuple[list[PendingRun], set[str]]:
        waiting = []
        for run in runs:
            if run.uploaded:
                continue
            if not _run_file(run).is_file():
                report.failed.append((
                    _what(run),
                    f"its run file {_run_file(run)} no longer exists (`rental-pipeline artifacts gc` forgets it)",
                ))
                continue
            waiting.append(run)
        if not waiting:
            return runs, set()
        budget = self._remaining(f"uploading {len(waiting)} run(s) with `wandb sync`")
        self._say(f"uploading {len(waiting)} run(s) with `wandb sync` (waiting at most {budget:.0f} s)")
        try:
            outcome = self.server.upload([_run_file(r) for r in waiting], timeout=budget)
        except SyncTimeoutError as error:
            raise _OutOfTime(f"waiting for `wandb sync` of {len(waiting)} run(s): {error}") from error
        except Exception as error:  # noqa: BLE001 - reported; the runs stay pending
            report.failed.append(("upload", f"{type(error).__name__}: {error}"))
            return runs, set()
        done: dict[str, PendingRun] = {}
        for run in waiting:
            why = outcome.get(_run_file(run), "`wandb sync` did not report on this run")
            if why is not None:
                report.failed.append((_what(run), why))
                continue
            entity = run.entity or info.entity
            updated = run.with_changes(uploaded=True, blobs=(), run_path=f"{entity}/{run.project}/{run.run_id}")
            self.ledger.update(updated)
            report.uploaded.append(updated)
            done[run.run_id] = updated
        self._say(f"uploaded {len(done)} of {len(waiting)} run(s)")
        names = {r.artifact.split(":")[0] for r in done.values() if r.kind == VERSION_RUN}
        return [done.get(r.run_id, r) for r in runs], names

    def _legacy(self, run: PendingRun, *, save: bool = True) -> PendingRun:
        """A record written before the ledger kept digests and inputs: both come from the store."""
        if run.kind != VERSION_RUN or run.digest is not None:
            return run
        try:
            version = self.store.get(run.artifact)
        except StoreError:
            return run
        updated = run.with_changes(digest=version.digest, inputs=tuple(version.inputs))
        if save:
            self.ledger.update(updated)
        return updated

    def _backfill(self, info: ServerInfo, report: SyncReport) -> None:
        """Runs uploaded before the ledger recorded where their artifact landed on W&B."""
        for run in self.ledger.synced():
            if run.kind != VERSION_RUN or run.wandb_artifact:
                continue
            run = self._legacy(run, save=False)
            if run.digest is None:
                continue
            run_path = run.run_path or f"{run.entity or info.entity}/{run.project}/{run.run_id}"
            name, digest = run.artifact.split(":")[0], run.digest
            found = self._call(
                f"finding {run.artifact} on W&B",
                lambda t: self.server.logged_artifact(run_path, name, digest, timeout=t),
                report,
                what=_what(run),
            )
            if found is not _FAILED:
                done = run.with_changes(uploaded=True, run_path=run_path, wandb_artifact=str(found))
                self.ledger.update_synced(done)

    def _find_artifact(self, run: PendingRun, report: SyncReport) -> PendingRun:
        if not run.uploaded or run.kind != VERSION_RUN or run.wandb_artifact or not run.digest:
            return run
        name = run.artifact.split(":")[0]
        found = self._call(
            f"finding {run.artifact} on W&B",
            lambda t: self.server.logged_artifact(str(run.run_path), name, str(run.digest), timeout=t),
            report,
            what=_what(run),
        )
        if found is _FAILED:
            return run
        updated = run.with_changes(wandb_artifact=str(found))
        self.ledger.update(updated)
        return updated

    def _link(self, run: PendingRun, index: Mapping[str, str], report: SyncReport) -> PendingRun:
        if not run.uploaded:
            return run
        for ref in run.inputs:
            if ref in run.linked or ref in run.unlinked:
                continue
            source = index.get(ref)
            if source is None and self._pending_record(ref) is None:
                # No run was ever made for it (W&B was disabled, or its folder was deleted and
                # forgotten): W&B will never have it, so waiting would only fail every sync.
                run = run.with_changes(unlinked=(*run.unlinked, ref))
                self.ledger.update(run)
                report.warnings.append(
                    f"{_what(run)}: its input {ref} was never mirrored to W&B, so W&B's lineage lacks that edge"
                )
                continue
            if source is None:
                report.failed.append((_what(run), f"its input {ref} is not on W&B yet ({self._why_missing(ref)})"))
                continue
            done = self._call(
                f"declaring {ref} an input of run {run.run_id}",
                lambda t: self.server.use_artifact(str(run.run_path), source, timeout=t),
                report,
                what=_what(run),
            )
            if done is _FAILED:
                continue
            run = run.with_changes(linked=(*run.linked, ref))
            self.ledger.update(run)
            report.links.append(f"{_what(run)} <- {ref} ({source})")
        return run

    # -- helpers -------------------------------------------------------------------------------

    def _index(self) -> dict[str, str]:
        """Store version -> the W&B version that holds it, for every version known to be on W&B."""
        index = {}
        for run in [*self.ledger.synced(), *self.ledger.all()]:
            if run.kind == VERSION_RUN and run.wandb_artifact:
                index[run.artifact] = run.wandb_artifact
        return index

    def _pending_record(self, ref: str) -> PendingRun | None:
        return next((r for r in self.ledger.all() if r.kind == VERSION_RUN and r.artifact == ref), None)

    def _why_missing(self, ref: str) -> str:
        record = self._pending_record(ref)
        if record is None:
            return "it was never mirrored: it was made while W&B was disabled, or its W&B run failed"
        if not record.uploaded:
            return f"its run {record.run_id} is not uploaded"
        return f"its run {record.run_id} is uploaded but W&B did not show which version holds it"

    def _remaining(self, waiting_for: str) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise _OutOfTime(waiting_for)
        return left

    def _call(
        self, doing: str, call: Callable[[float], Any], report: SyncReport, *, what: str | None = None
    ) -> Any:
        """One server call, given what is left of the budget; a failure is reported and returns
        ``_FAILED``, running out of time ends the sync."""
        left = self._remaining(doing)
        self._say(doing)
        try:
            result = call(left)
        except SyncTimeoutError as error:
            raise _OutOfTime(f"{doing}: {error}") from error
        except Exception as error:  # noqa: BLE001 - every failure is reported, none stops the others
            said = str(error) if isinstance(error, ServerCallError) else f"{type(error).__name__}: {error}"
            report.failed.append((what or doing, f"{doing}: {said}"))
            return _FAILED
        return result

    def _done(self, doing: str, call: Callable[[float], Any], report: SyncReport, what: str) -> bool:
        return self._call(doing, call, report, what=what) is not _FAILED

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One sync at a time per store (a pipeline's W&B worker may be syncing too)."""
        path = mirror_path(self.store.root, SYNC_LOCK)
        ensure_dir(path.parent)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            said = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not said:
                        self._say("waiting for another sync of this store to finish")
                        said = True
                    self._remaining("waiting for another sync of this store to finish")
                    time.sleep(0.2)
            yield
        finally:
            os.close(fd)


_FAILED = object()


def _run_file(run: PendingRun) -> Path:
    return Path(run.run_dir) / f"run-{run.run_id}.wandb"


def _what(run: PendingRun) -> str:
    return f"run {run.run_id} ({run.artifact}{', trial' if run.kind != VERSION_RUN else ''})"
