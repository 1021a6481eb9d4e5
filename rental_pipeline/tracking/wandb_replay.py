"""Replaying the store's logs onto W&B: alias moves (and the registry link of ``prod``) and
failed-check marks, the steps of a sync (:mod:`.wandb_sync`) that need no upload.

W&B keeps no alias history, so each alias is brought to its current target in the store; the
mirror state records how far each artifact's alias log and each version's check marks have been
applied, so a later sync does only what is new.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rental_pipeline.store import FAILED_CHECKS_FLAG, LATEST, AliasMove, ArtifactStore
from rental_pipeline.store.names import version_ref

from .mirror_state import MirrorState
from .pending import VERSION_RUN, PendingRun, PendingRuns
from .sync_report import RegistryLink, SyncReport
from .wandb_server import WandbServer


class Replay:
    """The replaying steps of :class:`.WandbSync` (a part of it: it uses the sync's store, server,
    ledger, state and its way of calling the server)."""

    store: ArtifactStore
    server: WandbServer
    registry: RegistryLink | None
    ledger: PendingRuns
    state: MirrorState

    def _done(self, doing: str, call: Callable[[float], Any], report: SyncReport, what: str) -> bool:
        raise NotImplementedError

    def _pending_record(self, ref: str) -> PendingRun | None:
        raise NotImplementedError

    def _why_missing(self, ref: str) -> str:
        raise NotImplementedError

    def _apply_aliases(self, index: Mapping[str, str], uploaded_now: set[str], report: SyncReport) -> None:
        collections = self._collections()
        for name in self.store.names():
            moves = self.store.alias_log(name)
            applied = self.state.moves_applied(name)
            fresh = moves[applied:]
            if not fresh and name not in uploaded_now:
                continue
            collection = collections.get(name)
            if collection is None:  # nothing of it on W&B: its first upload replays every alias
                self.state.set_moves_applied(name, len(moves))
                continue
            # Collapsed to each alias's current target: W&B keeps no alias history, so the end
            # state is all it can show. Right after an upload every alias is re-applied, since
            # the uploaded run carries the aliases its version had when it was mirrored.
            touched = sorted({m.alias for m in (moves if name in uploaded_now else fresh)} - {LATEST})
            current = fold(moves)
            artifact_type = self.store.get(version_ref(name, max(self.store.versions(name)))).type
            clean = all(
                [self._apply_alias(name, alias, current.get(alias), collection, artifact_type, index, report)
                 for alias in touched]
            )
            if clean:
                self.state.set_moves_applied(name, len(moves))

    def _apply_alias(
        self,
        name: str,
        alias: str,
        target: int | None,
        collection: str,
        artifact_type: str,
        index: Mapping[str, str],
        report: SyncReport,
    ) -> bool:
        """Bring one alias of one artifact to the store's state; False if W&B could not follow."""
        server, what = self.server, f"{name}:{alias}"
        registry = self.registry if self.registry and alias == self.registry.alias else None
        if registry and artifact_type not in registry.types:
            registry = None
        if target is not None:
            ref = version_ref(name, target)
            holder = index.get(ref)
            if holder is None and self._pending_record(ref):
                report.failed.append((what, f"{ref} is not on W&B yet ({self._why_missing(ref)})"))
                return False
            if holder is not None:
                if not self._done(f"putting {alias} on {holder}",
                                  lambda t: server.add_alias(holder, alias, timeout=t), report, what):
                    return False
                report.aliases.append(f"{what} -> v{target} ({holder})")
                if registry:
                    if not self._done(f"linking {holder} into {registry.target} as {alias}",
                                      lambda t: server.link(holder, registry.target, [alias], timeout=t), report, what):
                        return False
                    report.registry.append(f"{ref} linked into {registry.target} as {alias}")
                return True
            # Never mirrored (W&B was disabled when it was made): W&B must not keep claiming an
            # older version holds the alias.
            report.warnings.append(
                f"{what} points at {ref}, which was never mirrored to W&B; the alias was taken off "
                "W&B's versions instead"
            )
        if not self._done(f"taking {alias} off {collection}",
                          lambda t: server.remove_alias(collection, alias, timeout=t), report, what):
            return False
        if target is None:
            report.aliases.append(f"{what} removed ({collection})")
        if registry:
            if not self._done(f"taking {alias} off {registry.target}",
                              lambda t: server.remove_alias(registry.target, alias, timeout=t), report, what):
                return False
            report.registry.append(f"{alias} taken off {registry.target}")
        return True

    def _push_checks(self, index: Mapping[str, str], report: SyncReport) -> None:
        for name in self.store.names():
            pushed = self.state.pushed_checks(name)
            for version in self.store.history(name):
                holder = index.get(version.ref)
                failed = failed_checks(version.flags)
                if holder is None or failed == pushed.get(version.version):
                    continue
                doing = (
                    f"marking {holder} as failing {', '.join(failed)}" if failed
                    else f"clearing the failed-checks mark of {holder}"
                )
                if not self._done(doing, lambda t: self.server.mark_failed_checks(holder, failed, timeout=t),
                                  report, version.ref):
                    continue
                self.state.set_pushed_checks(name, version.version, failed)
                report.checks.append(
                    f"{version.ref} marked as failing {', '.join(failed)}" if failed
                    else f"{version.ref} failed-checks mark cleared"
                )

    def _collections(self) -> dict[str, str]:
        """Artifact name -> its W&B collection (``entity/project/name``), from the newest record."""
        found: dict[str, tuple[str, str]] = {}
        for run in [*self.ledger.synced(), *self.ledger.all()]:
            if run.kind == VERSION_RUN and run.wandb_artifact:
                name = run.artifact.split(":")[0]
                if name not in found or run.created_at >= found[name][0]:
                    found[name] = (run.created_at, run.wandb_artifact.rsplit(":", 1)[0])
        return {name: collection for name, (_, collection) in found.items()}


def fold(moves: list[AliasMove]) -> dict[str, int]:
    """The aliases the moves leave, each on its version (the alias log replayed)."""
    aliases: dict[str, int] = {}
    for move in moves:
        if move.to_version is None:
            aliases.pop(move.alias, None)
        else:
            aliases[move.alias] = move.to_version
    return aliases


def failed_checks(flags: Mapping[str, Any]) -> dict[str, Any] | None:
    """A version's failed checks as ``{check: message}``, or None when it has none."""
    failed = flags.get(FAILED_CHECKS_FLAG)
    if not failed:
        return None
    if isinstance(failed, Mapping):
        return {str(k): v for k, v in failed.items()}
    if isinstance(failed, list | tuple):
        return {str(k): True for k in failed}
    return {str(failed): True}
