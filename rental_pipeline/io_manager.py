"""The Dagster face of the artifact store: every asset output becomes a versioned artifact.

It loads and stores, nothing else. The store decides versions (a new one only when the bytes
change). The run's `RunState`, which the IO manager starts with the environment's `Settings` as
the run starts, decides which version each input is (`rental_pipeline.versions`: a pin, else this
run's own, else the recorded one, checked against this store) and keeps what the run has decoded.
`rental_pipeline.reuse` decides whether a step computes at all, and hands the IO manager a
`CacheHit` instead of a value when it does not; `rental_pipeline.records` says what a
materialization records. The store digest is each output's Dagster data version, so the UI's
"unsynced" marks and the run cache agree on what changed.

Tracking is not its business. The code location names the run's trackers (`trackers`; the W&B
one in `definitions.py`); each is attached to the run's store as a listener when the run starts,
so it hears every version, alias move and flag the run commits, by whichever writer. What only
Dagster knows of an output (its metadata, its step's config) reaches them through `RunTracker`:
`describe` just before the value is stored, `shown` for the asset page after, and `finish` when
Dagster tears the IO manager down (the end of the run with the in-process executor, the end of
each step with a process per step). A model this process has
just stored is kept as it was handed in (a skops file decodes to an equal model), so the next step
does not read back and decode the file it was just written to.
"""

import atexit
import gc
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, Protocol

import dagster as dg
from pydantic import Field, PrivateAttr

from rental_pipeline.code_version import git_revision
from rental_pipeline.home import open_store
from rental_pipeline.partitions import input_name, output_name
from rental_pipeline.records import (
    ARTIFACT_KEY,
    ARTIFACT_TYPE_KEY,
    config_used,
    materialization_metadata,
    plain_facts,
    uses_artifacts,
)
from rental_pipeline.reuse import FORCE_TAG, defers_inputs
from rental_pipeline.run_cache import CacheHit, remember
from rental_pipeline.run_state import Deferred, RunState
from rental_pipeline.settings import Settings
from rental_pipeline.sources import redact
from rental_pipeline.store import FAILED_CHECKS_FLAG, ArtifactStore, VersionManifest, codec_for
from rental_pipeline.versions import PINNED, Resolution
from rental_pipeline.weeks import PARTITION_KEY, split_name

# Metadata of a materialization that reported a version found by the run cache.
REUSED_FROM_KEY = "reused_from_run"


class RunTracker(Protocol):
    """A tracker of one run: a store listener (`rental_pipeline.store.StoreListener`) the IO manager also
    tells what only Dagster knows of each output."""

    def describe(self, name: str, context: dg.OutputContext, config: Mapping[str, Any]) -> None:
        """The output about to be stored as artifact ``name``: its context (metadata) and its
        step's recorded config."""

    def shown(self, version: VersionManifest, created: bool) -> Mapping[str, Any]:
        """What the asset page shows of the tracked version (e.g. a link to its run)."""

    def finish(self, log: Any) -> None:
        """The run (or step) is over: wait for what is under way, log what happened."""


# (the run's store, the Dagster run id, the IO manager's config) -> that run's tracker
TrackerFactory = Callable[[ArtifactStore, str, Mapping[str, Any]], RunTracker]


class ArtifactStoreResource(dg.ConfigurableResource):
    """Where the store lives; shared by the IO manager, the checks and the promotion logic (the
    code location hands the IO manager this run's resource: see `artifact_io_manager`)."""

    root: str | None = Field(
        default=None,
        description="Store folder or s3://bucket/prefix (endpoint and region from AWS_* variables or "
        "?endpoint_url=...&region=...). Empty: $RENTAL_PIPELINE_STORE, else $RENTAL_PIPELINE_HOME/artifacts "
        "(default .rental_pipeline).",
    )
    # Dagster builds a fresh copy of the resource for each run in each process (private attributes
    # are not copied), so the store below lasts one run of one process: long enough for its
    # manifest cache to pay, never shared by two runs. The key also holds the process id, so a
    # forked child never uses its parent's open clients, and the root, so a changed
    # $RENTAL_PIPELINE_STORE gets a store of its own.
    _store: ArtifactStore | None = PrivateAttr(default=None)
    _store_key: tuple[int, str] | None = PrivateAttr(default=None)

    def store(self) -> ArtifactStore:
        """This resource's store object, built on first use (and again when the settings the
        environment gives now name another root: each call reads them, the edge of the run)."""
        settings = Settings.from_environment()
        key = (os.getpid(), str(self.root or settings.store))
        if self._store is None or self._store_key != key:
            self._store, self._store_key = open_store(key[1], settings=settings), key
        return self._store


class ArtifactIOManager(dg.ConfigurableIOManager):
    """Stores each output as `asset_name:vN` and mirrors new versions to Weights & Biases."""

    # Who tracks a run: the code location's choice (`definitions.py`). A class attribute, not
    # config: Dagster builds the manager anew from its config for every run.
    trackers: ClassVar[tuple[TrackerFactory, ...]] = ()

    artifact_store: dg.ResourceDependency[ArtifactStoreResource]
    wandb_mode: str | None = Field(
        default=None,
        description="offline, online or disabled. Empty: WANDB_MODE, else online with WANDB_API_KEY, else offline.",
    )
    wandb_project: str | None = Field(default=None, description="W&B project. Empty: WANDB_PROJECT or nyc_airbnb.")
    wandb_registry: str | None = Field(
        default=None,
        description="W&B registry collection the prod model is linked into. Empty: "
        "$RENTAL_PIPELINE_WANDB_REGISTRY or wandb-registry-model/nyc-rental-price; none: no link.",
    )
    wandb_sync_timeout: float = Field(
        default=300.0,
        gt=0,
        description="Online: seconds the end of a run waits for W&B uploads; the rest stays queued.",
    )
    pins: dict[str, str] = Field(
        default_factory=dict,
        description="Load these inputs at a fixed version or alias instead of the recorded one, "
        "e.g. {inference_pipeline: prod} or {clean_sample: v3}.",
    )
    force: bool = Field(
        default=False,
        description="Compute every selected asset even when a stored version was made by the same code, "
        f"config and inputs (the run tag {FORCE_TAG}=true does the same).",
    )
    _runs: dict[str, RunState] = PrivateAttr(default_factory=dict)
    _tracking: list[tuple[ArtifactStore, RunTracker]] = PrivateAttr(default_factory=list)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Attach this run's trackers to its store, before any step writes to it."""
        if context.run is None:
            return
        if not self.trackers:
            if self.wandb_mode not in (None, "disabled") or self.wandb_project or self.wandb_registry:
                # Asked for W&B, but built outside the code location that names the trackers.
                context.log.warning(
                    "W&B settings are given but no tracker is attached, so nothing is mirrored: build the IO "
                    "manager through rental_pipeline.definitions (which names the W&B tracker) or set "
                    "ArtifactIOManager.trackers"
                )
            return
        store = self.artifact_store.store()
        config = {name: getattr(self, name) for name in type(self).model_fields if name != "artifact_store"}
        for start in self.trackers:
            tracker = start(store, context.run.run_id, config)
            store.subscribe(tracker)
            self._tracking.append((store, tracker))

    def run_state(self, run_id: str | None, instance: dg.DagsterInstance | None) -> RunState:
        """The state of run ``run_id`` (None: outside a run, e.g. an asset value loader), with the
        settings the environment gives as the run starts here."""
        key = run_id or ""
        if key not in self._runs:
            self._runs[key] = RunState.start(
                self.artifact_store.store(),
                self.pins,
                Settings.from_environment(),
                instance=instance,
                run_id=run_id,
                force=self.force,
            )
        return self._runs[key]

    def load_input(self, context: dg.InputContext) -> Any:
        step = _step_context(context)
        name = input_name(context, step)  # a week of a partitioned asset is an artifact of its own
        if name is None:  # a plain input of a run that reads a week instead
            return None
        run = self.run_state(step.run_id if step is not None else None, _instance(context))
        resolution = run.input(name)
        version = run.store.get(resolution.ref)
        if step is None:  # outside a run there is nothing to record
            return run.value(version)
        materializes = bool(step.get_output_asset_keys())  # check steps only read what they check
        refuse_failed_checks(version, resolution, materializes)
        run.loaded.setdefault(step.step.key, {})[name] = version.ref
        if materializes and defers_inputs(step.op_def):
            return Deferred(version, resolution.how)
        context.log.debug(f"Loading {version.ref} ({resolution.how})")
        return run.value(version)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        store = self.artifact_store.store()
        step = _step_context(context)
        run = self.run_state(context.run_id, step.instance if step is not None else None)
        config = dict(step.op_config) if step is not None and isinstance(step.op_config, dict) else {}
        # What is written down: the config that applied, with any secret a source URL held removed.
        recorded = redact(config_used(context.output_metadata, config))
        if isinstance(obj, CacheHit):
            # A re-run with nothing changed has the same result as the run that made this version:
            # `latest` moves back to it, as a write of the same bytes would move it.
            store.move_latest(
                obj.version.ref,
                reason=f"reused by the run cache: same code, config and inputs as run {obj.run_id or 'unknown'}",
                actor=f"dagster run {context.run_id}",
                run_id=context.run_id,
            )
            version, created = store.get(obj.version.ref), False
        else:
            inputs = run.loaded_in(context.step_key) if step is not None else {}
            inputs.update(uses_artifacts(context.output_metadata))
            version, created = self._save(store, run, context, obj, recorded, inputs)
        run.resolver.stored(version.name, version.ref)
        if step is not None:
            # The store digest is the data version: equal bytes, equal version, nothing downstream stale.
            step.set_data_version(context.asset_key, dg.DataVersion(version.digest))
        metadata = materialization_metadata(store, version, created, context.output_metadata)
        if isinstance(obj, CacheHit):
            metadata[REUSED_FROM_KEY] = obj.run_id or "unknown"
        for _, tracker in self._tracking:
            metadata.update(tracker.shown(version, created))
        if isinstance(obj, CacheHit):
            context.log.info(
                f"Reused artifact {version.ref}: same code, config and inputs as run {obj.run_id or 'unknown'}"
            )
        else:
            context.log.info(f"{'Stored new' if created else 'Reused'} artifact {version.ref} ({version.digest})")
        context.add_output_metadata(metadata)

    def _save(
        self,
        store: ArtifactStore,
        run: RunState,
        context: dg.OutputContext,
        obj: Any,
        config: dict,
        inputs: dict[str, str],
    ) -> tuple[VersionManifest, bool]:
        """Store a computed value (a new version only if its bytes are new); whether it was new."""
        spec = context.asset_spec
        name = output_name(context)
        week = split_name(name)[1]
        for _, tracker in self._tracking:  # what Dagster knows of the version about to be saved
            tracker.describe(name, context, config)
        result = store.save(
            name,
            obj,
            type=str(spec.metadata.get(ARTIFACT_TYPE_KEY, name)),
            description=spec.description or "",
            metadata={
                "config": config,
                "facts": plain_facts(context.output_metadata),
                **({PARTITION_KEY: week} if week else {}),
                **({"git": git_revision()} if git_revision() else {}),
            },
            run_id=context.run_id,
            code_version=spec.code_version,
            inputs=list(inputs.values()),
        )
        if codec_for(obj).round_trips:
            # Equal to what decoding the file gives: the next step gets this, not a second decode.
            run.values.keep(result.version, obj)
        if key := run.cache_keys.get((context.step_key, name)):  # how `reuse` found this step's key
            remember(store, result.version.ref, key, context.run_id)
        return result.version, result.created

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._runs.clear()
        _exit_quickly()
        tracking, self._tracking = self._tracking, []
        for store, tracker in tracking:
            store.unsubscribe(tracker)
            tracker.finish(context.log)


@dg.io_manager(
    config_schema=ArtifactIOManager.to_config_schema(),
    required_resource_keys={"artifact_store"},
    description=ArtifactIOManager.__doc__,
)
def artifact_io_manager(context: dg.InitResourceContext) -> Iterator[ArtifactIOManager]:
    """An `ArtifactIOManager` on the run's own `artifact_store` resource: the code location's IO manager.

    Every way of naming the store (`resources: {artifact_store: {config: {root: ...}}}` in run
    config, `$RENTAL_PIPELINE_STORE`, the default under `$RENTAL_PIPELINE_HOME`) then reaches the IO
    manager exactly as it reaches the assets and checks. An `ArtifactIOManager(artifact_store=...)`
    bound to a resource instance would not: Dagster initializes a nested resource from the values
    it was built with, so a root given as run config reached the assets and checks while the IO
    manager went on writing to the default store. Declaring the store with `configure_at_launch()`
    would fix runs too, but Dagster's asset value loader (`defs.get_asset_value_loader()`, for
    notebooks and scripts) then cannot build the IO manager: it only builds the resources an IO
    manager names in `required_resource_keys`, which this definition does.

    The manager holds the very resource object the run's assets and checks receive (Dagster's own
    nested-resource handling would build a copy of it), so a run has one store object and one
    manifest cache; it is torn down here as Dagster tears down a `ConfigurableIOManager`.
    """
    manager = ArtifactIOManager(artifact_store=context.resources.artifact_store, **(context.resource_config or {}))
    manager.setup_for_execution(context)
    try:
        yield manager
    finally:
        manager.teardown_after_execution(context)


def refuse_failed_checks(version: VersionManifest, resolution: Resolution, materializes: bool) -> None:
    """Within one run, a failed blocking check stops everything downstream. A later run that
    selects only downstream assets would still load the version the upstream last recorded, so
    a step that makes assets is refused a version its checks failed on, unless it is pinned on
    purpose; a check step still reads it, to judge it again."""
    failed = version.flags.get(FAILED_CHECKS_FLAG)
    if not failed or not materializes or resolution.how == PINNED:
        return
    checks = ", ".join(sorted(failed)) if isinstance(failed, (dict, list)) else str(failed)
    raise dg.Failure(
        description=(
            f"{version.ref} failed its checks ({checks}), so it is not used downstream; it stays "
            f"stored. Re-materialize {version.name} from corrected input (or re-run its checks once "
            f"they should pass), or pin it on purpose: io_manager config pins: "
            f"{{{version.name}: v{version.version}}}."
        ),
        metadata={ARTIFACT_KEY: version.ref, "failed_checks": dg.MetadataValue.json(failed)},
    )


_EXIT_REGISTERED: list[bool] = []


def _exit_quickly() -> None:
    """Make the exit of a process that ran the pipeline cheap.

    When the interpreter exits it garbage-collects every object left, and with Dagster, pandas,
    scikit-learn and pandera loaded (thousands of modules) that alone takes over half a second
    of a `dagster job execute` run. Freezing the heap as the interpreter starts to exit moves
    every object out of the collector's reach, so that last collection has nothing to walk; the
    operating system frees the memory as after any exit. Other exit handlers (Dagster's,
    logging's flush) run as before; all that is skipped are finalizers of objects still in
    reference cycles at exit, which Python never promises to run. A process that goes on (a code
    server, a test session) is unaffected until it exits.
    """
    if not _EXIT_REGISTERED:
        atexit.register(gc.freeze)
        _EXIT_REGISTERED.append(True)


def _step_context(context: dg.InputContext | dg.OutputContext) -> Any:
    try:
        return context.step_context
    except Exception:  # noqa: BLE001 - Dagster raises when the input is loaded outside a step
        return None


def _instance(context: dg.InputContext) -> dg.DagsterInstance | None:
    try:
        return context.instance
    except Exception:  # noqa: BLE001 - no instance outside a run: fall back to the latest alias
        return None
