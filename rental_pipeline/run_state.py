"""One run's view of the artifact store, shared by the IO manager, the asset steps and the checks.

A run resolves each input once and sticks to the answer (`rental_pipeline.versions`), remembers
the exact version every step read (so a check flags, and an evaluation promotes, exactly the one
the step used, and each new version names its inputs), decodes a version at most once
(`rental_pipeline.value_cache`), and asks Dagster at most once what an earlier run recorded. The
IO manager keeps one per run (Dagster builds it for each run, and with a process per step for each
step); assets and checks reach it through the helpers at the bottom, never the IO manager itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from rental_pipeline import records
from rental_pipeline.settings import Settings
from rental_pipeline.store import ArtifactStore, VersionManifest
from rental_pipeline.value_cache import ValueCache
from rental_pipeline.versions import RecordedVersionError, Resolution, VersionResolver


@dataclass(frozen=True)
class Deferred:
    """An input of a reusable step as the IO manager hands it over: the version, not yet decoded.
    `rental_pipeline.reuse` decodes it only when the step computes, so a step whose outputs the
    run cache holds reads none of its inputs; an asset body never sees one."""

    version: VersionManifest
    how: str  # why this version (a pin, this run's, the last recorded), for the run's log


@dataclass
class RunState:
    store: ArtifactStore
    resolver: VersionResolver
    settings: Settings  # read from the environment as the run started, for all of its steps
    instance: dg.DagsterInstance | None = None
    force: bool = False  # the IO manager's `force`: compute even what the run cache holds
    values: ValueCache = field(default_factory=ValueCache)
    loaded: dict[str, dict[str, str]] = field(default_factory=dict)  # step key -> asset -> name:vN
    # (step key, asset) -> the run-cache key the step was made with, recorded with what it stores
    cache_keys: dict[tuple[str, str], str] = field(default_factory=dict)
    _made_by: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        store: ArtifactStore,
        pins: dict[str, str],
        settings: Settings,
        *,
        instance: dg.DagsterInstance | None,
        run_id: str | None,
        force: bool = False,
    ) -> RunState:
        """The state of run ``run_id``; its inputs resolve from what it and ``instance`` recorded."""
        resolver = VersionResolver(
            store,
            pins,
            recorded_in_run=lambda name: records.recorded_in_run(instance, run_id, name),
            recorded_last=lambda name: records.recorded_last(instance, name),
        )
        return cls(store, resolver, settings, instance, force)

    def input(self, name: str) -> Resolution:
        """The run's version of input ``name``; a recorded version this store does not hold (the
        store was switched since it was recorded) stops the step, saying what to do."""
        try:
            return self.resolver.input(name)
        except RecordedVersionError as exc:
            raise dg.Failure(
                description=str(exc),
                metadata={
                    "asset": name,
                    "recorded_version": exc.recorded.ref,
                    "recorded_digest": exc.recorded.digest or "unknown",
                    "store": exc.location,
                    "digest_in_store": exc.found_digest or "none: no such version",
                },
            ) from None

    def value(self, version: VersionManifest) -> Any:
        """``version``'s value, decoded at most once in the run (each caller gets its own copy)."""
        return self.values.get(version, lambda: self.store.load(version))

    def stored_value(self, ref: str) -> Any:
        return self.value(self.store.get(ref))

    def loaded_in(self, step_key: str) -> dict[str, str]:
        """Asset name -> the exact `name:vN` step ``step_key`` loaded as an input."""
        return dict(self.loaded.get(step_key, {}))

    def made_by(self, run_id: str | None, name: str) -> dict[str, Any] | None:
        """The metadata run ``run_id`` recorded when it materialized ``name``: one query of that
        run's events per run, however many of its versions this run reuses."""
        if not run_id or self.instance is None:
            return None
        if run_id not in self._made_by:
            self._made_by[run_id] = records.materializations(self.instance, run_id)
        return self._made_by[run_id].get(name)


Context = dg.AssetExecutionContext | dg.AssetCheckExecutionContext


def run_state(context: Context) -> RunState:
    """The state of the run ``context`` belongs to, as its IO manager keeps it."""
    return context.resources.io_manager.run_state(context.run.run_id, context.instance)


def loaded_artifacts(context: Context) -> dict[str, str]:
    """Asset name -> the exact `name:vN` this step loaded, as the IO manager resolved it (pins
    included), so an asset or a check names, flags or promotes exactly the version it used."""
    step = context.op_execution_context.get_step_execution_context()
    return run_state(context).loaded_in(step.step.key)


def stored_value(context: Context, ref: str) -> Any:
    """A stored version read outside the step's inputs (the split side a check compares with, a
    champion model), decoded at most once in the run like the inputs."""
    return run_state(context).stored_value(ref)


def run_resolver(context: Context) -> VersionResolver:
    """The run's version resolver, for aliases an asset or check reads (prod, reference)."""
    return run_state(context).resolver
