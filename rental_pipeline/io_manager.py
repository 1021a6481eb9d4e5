"""The Dagster face of the artifact store: every asset output becomes a versioned artifact.

The store decides versions (a new one only when the bytes change); `rental_pipeline.versions`
decides, once per run, which version each input is: a pin, else the version this run itself
stored, else the one the upstream's latest materialization recorded, used only if this run's
store holds it with the digest recorded with it (the store may have been switched since). A
concurrent run moving `latest` or materializing the same asset never changes what this run reads.

Each output reports the store digest as its Dagster data version, and each asset's code version
is derived from its source (`rental_pipeline.code_version`), so the UI's "unsynced" marks and
the run cache (`rental_pipeline.run_cache`) agree on what changed: an asset whose code, config
and exact inputs made a stored version before returns `Reused` instead of computing, and this
IO manager reports that version again without writing anything.

New versions are mirrored to W&B by a worker process while the run goes on, with the asset's
metrics, tables and trials (`wandb_view`); the IO manager waits for those W&B runs when Dagster
tears it down (the end of the run with the in-process executor, the end of each step with a
process per step), and logs where each one landed and, online, what the upload did. Loaded
versions are kept decoded until then, so checks and the downstream asset read a version once; a
model this process has just stored is kept as it was handed in (a skops file decodes to an equal
model), so the next step does not read back and decode the file it was just written to.
"""

import atexit
import gc
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from rental_pipeline import wandb_view
from rental_pipeline.assets.metadata import displayed, plots_wanted
from rental_pipeline.code_version import git_revision
from rental_pipeline.run_cache import CacheHit, cache_key, find_cached, remember
from rental_pipeline.sources import redact
from rental_pipeline.store import (
    FAILED_CHECKS_FLAG,
    ArtifactStore,
    MirrorQueue,
    VersionManifest,
    WandbMirror,
    codec_for,
    default_root,
    project_name,
    resolve_mode,
)
from rental_pipeline.value_cache import ValueCache
from rental_pipeline.versions import PINNED, Recorded, RecordedVersionError, Resolution, VersionResolver

ARTIFACT_KEY = "artifact"
ARTIFACT_TYPE_KEY = "artifact_type"
# Output metadata naming versions an asset read from the store itself (not as Dagster inputs),
# comma-separated, so they still appear in its lineage.
USES_ARTIFACTS_KEY = "uses_artifacts"
# Output metadata holding the part of the step's config that applied (e.g. a synthetic source's
# row count only when no file was given); recorded as the version's config instead of all of it.
CONFIG_USED_KEY = "config_used"


# Metadata of a materialization: the version's store digest (also its Dagster data version), and
# where the store that made it keeps the artifact.
DIGEST_KEY = "artifact_digest"
PATH_KEY = "artifact_path"
DATA_VERSION_TAG = "dagster/data_version"
# Metadata of a materialization that reported a version found by the run cache.
REUSED_FROM_KEY = "reused_from_run"
# Run tag that makes every selected asset compute even when the run cache holds its version.
FORCE_TAG = "rental_pipeline/force"


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
        """This resource's store object, built on first use."""
        key = (os.getpid(), str(self.root or default_root()))
        if self._store is None or self._store_key != key:
            self._store, self._store_key = ArtifactStore(key[1]), key
        return self._store


@dataclass(frozen=True)
class Reused:
    """Returned by an asset instead of its value when the run cache holds the version."""

    version: VersionManifest
    run_id: str | None


@dataclass(frozen=True)
class NotLoaded:
    """Handed to an asset instead of an input value when the run cache already holds every one
    of its outputs: the asset returns `Reused` without reading it, so nothing is decoded."""

    ref: str


@dataclass
class _RunState:
    resolver: VersionResolver
    loaded: dict[str, dict[str, str]] = field(default_factory=dict)  # step key -> name -> ref
    decisions: dict[str, dict[str, CacheHit] | None] = field(default_factory=dict)  # step key -> hits
    # earlier run id -> asset name -> the metadata its materialization recorded (run-cache hits)
    made_by: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


class ArtifactIOManager(dg.ConfigurableIOManager):
    """Stores each output as `asset_name:vN` and mirrors new versions to Weights & Biases."""

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
    _runs: dict[str, _RunState] = PrivateAttr(default_factory=dict)
    _mirrors: MirrorQueue | None = PrivateAttr(default=None)
    _values: ValueCache = PrivateAttr(default_factory=ValueCache)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._values.clear()
        self._runs.clear()
        _exit_quickly()
        if self._mirrors is None and resolve_mode(self.wandb_mode) == "online":
            self._mirror_queue(self.artifact_store.store())  # alias moves made by this run, e.g. prod
        if self._mirrors is None:
            return
        for outcome in self._mirrors.wait():
            if outcome.error is not None:
                context.log.warning(
                    f"W&B run {outcome.run_id} could not mirror {outcome.artifact} (it stays stored): "
                    f"{outcome.error}"
                )
            elif outcome.result is not None:
                where = outcome.result.url or outcome.result.run_dir or outcome.result.mode
                context.log.info(f"W&B run {outcome.run_id} holds {outcome.artifact}: {where}")
        report = self._mirrors.sync_report
        if report is not None:
            log = context.log.info if report.get("ok") else context.log.warning
            log("W&B sync: " + "\n".join(report.get("lines", [])))
        self._mirrors = None

    def _mirror_queue(self, store: ArtifactStore) -> MirrorQueue:
        if self._mirrors is None:
            self._mirrors = MirrorQueue(
                WandbMirror(
                    store, mode=self.wandb_mode, registry=self.wandb_registry, sync_timeout=self.wandb_sync_timeout
                )
            )
        return self._mirrors

    # -- versions ------------------------------------------------------------------------------

    def _run(self, run_id: str | None, instance: dg.DagsterInstance | None) -> _RunState:
        key = run_id or ""
        state = self._runs.get(key)
        if state is None:
            resolver = VersionResolver(
                self.artifact_store.store(),
                self.pins,
                recorded_in_run=lambda name: _recorded_in_run(instance, run_id, name),
                recorded_last=lambda name: _recorded_last(instance, name),
            )
            state = self._runs[key] = _RunState(resolver)
        return state

    def _input(self, state: _RunState, name: str) -> Resolution:
        """The run's version of input ``name``; a recorded version this store does not hold (the
        store was switched since it was recorded) stops the step, saying what to do."""
        try:
            return state.resolver.input(name)
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

    def resolver(self, context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> VersionResolver:
        """This run's resolver, for assets and checks that read the store themselves."""
        return self._run(context.run.run_id, context.instance).resolver

    def stored_value(self, ref: str) -> Any:
        """A stored version's value, decoded at most once per run like the inputs (the split side
        a check compares with, a champion model, an input the run cache did not load)."""
        store = self.artifact_store.store()
        version = store.get(ref)
        return self._values.get(version, lambda: store.load(version))

    def made_by(self, context: dg.AssetExecutionContext, run_id: str | None, name: str) -> dict[str, Any] | None:
        """The metadata run ``run_id`` recorded when it materialized ``name``: one query of that
        run's events per run, however many of its versions this run reuses."""
        if not run_id:
            return None
        state = self._run(context.run.run_id, context.instance)
        if run_id not in state.made_by:
            state.made_by[run_id] = _materializations(context.instance, run_id)
        return state.made_by[run_id].get(name)

    def loaded_in_step(self, run_id: str, step_key: str) -> dict[str, str]:
        """Asset name -> the exact `name:vN` a step of this run loaded as an input."""
        state = self._runs.get(run_id)
        return dict(state.loaded.get(step_key, {})) if state is not None else {}

    def reuse(
        self, context: dg.AssetExecutionContext, extra_inputs: Mapping[str, str] | None = None
    ) -> dict[str, CacheHit] | None:
        """The stored versions made by the same code, config and inputs, one per selected asset
        of this step; None unless every one is found (or when forced to recompute).

        ``extra_inputs`` are versions the asset reads from the store itself (batch predictions'
        model); without them the answer is the one given when the step's inputs were loaded.
        """
        step = context.op_execution_context.get_step_execution_context()
        state = self._run(step.run_id, step.instance)
        if extra_inputs is None and step.step.key in state.decisions:
            return state.decisions[step.step.key]
        return self._decide(step, state, extra_inputs or {})

    def _decide(self, step: Any, state: _RunState, extra_inputs: Mapping[str, str]) -> dict[str, CacheHit] | None:
        """Look every selected output of the step up in the run cache, from the exact versions of
        its inputs (resolved, not loaded) and its config; remembered for the step."""
        decision = None
        assets_def = step.job_def.asset_layer.get_assets_def_for_node(step.node_handle)
        forced = self.force or str(step.run_tags.get(FORCE_TAG, "")).lower() in ("1", "true", "yes")
        if assets_def is not None and not forced:
            inputs = {
                key.to_user_string(): self._input(state, key.to_user_string()).ref
                for name, key in assets_def.keys_by_input_name.items()
                if not assets_def.node_def.input_def_named(name).dagster_type.is_nothing
            }
            inputs.update(extra_inputs)
            config = _config_of(step)
            store = self.artifact_store.store()
            hits: dict[str, CacheHit] | None = {}
            for key in step.get_output_asset_keys():
                name = key.to_user_string()
                code_version = assets_def.code_versions_by_key.get(key) or ""
                hit = find_cached(store, name, cache_key(name, code_version, config, inputs, charts=plots_wanted()))
                if hit is None:
                    hits = None
                    break
                hits[name] = hit
            decision = hits or None
        state.decisions[step.step.key] = decision
        return decision

    # -- IO --------------------------------------------------------------------------------------

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        store = self.artifact_store.store()
        name = context.asset_key.to_user_string()
        spec = context.asset_spec
        step = _step_context(context)
        state = self._run(context.run_id, step.instance if step is not None else None)
        inputs = self.loaded_in_step(context.run_id, context.step_key) if step is not None else {}
        used = context.output_metadata.get(USES_ARTIFACTS_KEY)
        if used is not None:
            for ref in str(getattr(used, "value", used)).split(","):
                if ref.strip():
                    inputs[ref.strip().split(":")[0]] = ref.strip()
        config = _config_of(step)
        # What is written down: the config that applied, with any secret a source URL held removed.
        recorded = redact(_config_used(context, config))
        if isinstance(obj, Reused):
            # A re-run with nothing changed has the same result as the run that made this version:
            # `latest` moves back to it, as a write of the same bytes would move it.
            made_by = obj.run_id or "unknown"
            store.move_latest(
                obj.version.ref,
                reason=f"reused by the run cache: same code, config and inputs as run {made_by}",
                actor=f"dagster run {context.run_id}",
                run_id=context.run_id,
            )
            version, created = store.get(obj.version.ref), False
        else:
            result = store.save(
                name,
                obj,
                type=str(spec.metadata.get(ARTIFACT_TYPE_KEY, name)),
                description=spec.description or "",
                metadata={
                    "config": recorded,
                    "facts": _plain_facts(context.output_metadata),
                    **({"git": git_revision()} if git_revision() else {}),
                },
                run_id=context.run_id,
                code_version=spec.code_version,
                inputs=list(inputs.values()),
            )
            version, created = result.version, result.created
            if codec_for(obj).round_trips:
                # Equal to what decoding the file gives: the next step gets this, not a second decode.
                self._values.keep(version, obj)
            if step is not None:
                key = cache_key(name, spec.code_version or "", config, inputs, charts=plots_wanted())
                remember(store, version.ref, key, context.run_id)
        state.resolver.stored(name, version.ref)
        if step is not None:
            # The store digest is the data version: equal bytes, equal version, nothing downstream stale.
            step.set_data_version(context.asset_key, dg.DataVersion(version.digest))
        # The store keeps full precision; the page shows floats rounded (these override the asset's).
        metadata: dict[str, Any] = {
            **displayed(context.output_metadata),
            ARTIFACT_KEY: version.ref,
            DIGEST_KEY: version.digest,
            # a snapshot: `prod` may move to this version later (see model_evaluation, `artifacts show`)
            "aliases_at_materialization": ", ".join(version.aliases),
            "artifact_version_new": created,
            "artifact_size_bytes": version.size,
            "artifact_inputs": ", ".join(version.inputs) or "none",
            PATH_KEY: dg.MetadataValue.path(str(store.layout.collection(name))),
            "code_version": version.code_version or "unknown",
        }
        if isinstance(obj, Reused):
            metadata[REUSED_FROM_KEY] = obj.run_id or "unknown"
            metadata["wandb_run"] = f"unchanged: {version.ref} was mirrored when first written"
            context.log.info(
                f"Reused artifact {version.ref}: same code, config and inputs as run {obj.run_id or 'unknown'}"
            )
        else:
            if created:
                mirrors = self._mirror_queue(store)
                if mirrors.mode == "disabled":
                    metadata["wandb_run"] = "not mirrored (W&B disabled)"
                else:
                    project = project_name(self.wandb_project)
                    view = wandb_view.run_options(store, version, context.run_id, context.output_metadata, recorded)
                    run_id = mirrors.submit(
                        version, job_type=name, project=project, group=context.run_id, config=recorded, **view
                    )
                    metadata["wandb_run"] = wandb_view.run_link(mirrors.mirror, project, run_id)
            else:
                metadata["wandb_run"] = f"unchanged: {version.ref} was mirrored when first written"
            context.log.info(
                f"{'Stored new' if created else 'Reused'} artifact {version.ref} ({version.digest})"
            )
        context.add_output_metadata(metadata)

    def load_input(self, context: dg.InputContext) -> Any:
        store = self.artifact_store.store()
        name = context.asset_key.to_user_string()
        step = _step_context(context)
        state = self._run(step.run_id if step is not None else None, _instance(context))
        resolution = self._input(state, name)
        version = store.get(resolution.ref)
        if step is not None:  # outside a run (e.g. an asset value loader) there is nothing to record
            materializes = _materializes_assets(step)
            if materializes and resolution.how != PINNED:
                _refuse_failed_checks(version)
            state.loaded.setdefault(step.step.key, {})[name] = version.ref
            if materializes and self.reuse_decision(step, state) is not None:
                context.log.debug(f"Not loading {version.ref} ({resolution.how}): the run cache holds the outputs")
                return NotLoaded(version.ref)
            # Which version, and why: the run's log says so for every input it reads.
            context.log.debug(f"Loading {version.ref} ({resolution.how})")
        return self._values.get(version, lambda: store.load(version))

    def reuse_decision(self, step: Any, state: _RunState) -> dict[str, CacheHit] | None:
        if step.step.key not in state.decisions:
            self._decide(step, state, {})
        return state.decisions[step.step.key]


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


def reused_output(context: dg.AssetExecutionContext, hit: CacheHit, output_name: str = "result") -> dg.Output:
    """The output an asset returns for a run-cache hit: the stored version, with the metadata
    the run that made it recorded (so the asset page still shows its metrics and tables)."""
    metadata = context.resources.io_manager.made_by(context, hit.run_id, hit.version.name)
    if metadata is None:
        metadata = dict(hit.version.metadata.get("facts") or {})
    return dg.Output(Reused(hit.version, hit.run_id), output_name=output_name, metadata=metadata)


def _materializations(instance: dg.DagsterInstance, run_id: str) -> dict[str, dict[str, Any]]:
    """Asset name -> the metadata of its last materialization in run ``run_id``."""
    try:
        entries = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    except Exception:  # noqa: BLE001 - a run deleted from this instance: fall back to the manifest
        return {}
    found: dict[str, dict[str, Any]] = {}
    for entry in entries:
        event = entry.dagster_event
        if event is not None and event.asset_key is not None:
            found[event.asset_key.to_user_string()] = dict(event.step_materialization_data.materialization.metadata)
    return found


def _recorded(materialization: dg.AssetMaterialization) -> Recorded | None:
    """The version a materialization reported, with the digest Dagster recorded with it (our
    metadata, else its data version), so the resolver can tell it from an equal number in
    another store."""
    metadata = materialization.metadata
    if ARTIFACT_KEY not in metadata:
        return None
    digest = metadata.get(DIGEST_KEY)
    where = metadata.get(PATH_KEY)
    return Recorded(
        str(metadata[ARTIFACT_KEY].value),
        digest=str(digest.value) if digest is not None else (materialization.tags or {}).get(DATA_VERSION_TAG),
        where=str(where.value) if where is not None else None,
    )


def _recorded_in_run(instance: dg.DagsterInstance | None, run_id: str | None, name: str) -> Recorded | None:
    """The version of ``name`` this run materialized, else one another step of it recorded as an
    input (a process per step does not share the resolver's memory); never another run's."""
    if instance is None or not run_id:
        return None
    read = None
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        event = entry.dagster_event
        if event is None:
            continue
        materialization = event.step_materialization_data.materialization
        if event.asset_key == dg.AssetKey(name):
            own = _recorded(materialization)
            if own is not None:
                return own
        inputs = materialization.metadata.get("artifact_inputs")
        for ref in str(inputs.value if inputs is not None else "").split(","):
            if ref.strip().split(":")[0] == name:
                read = Recorded(ref.strip())  # no digest recorded for inputs: checked to exist
    return read


def _recorded_last(instance: dg.DagsterInstance | None, name: str) -> Recorded | None:
    """The version of ``name`` the instance's latest materialization of it recorded, in whichever
    store that run used."""
    if instance is None:
        return None
    event = instance.get_latest_materialization_event(dg.AssetKey(name))
    if event is None or event.asset_materialization is None:
        return None
    return _recorded(event.asset_materialization)


def loaded_value(context: dg.AssetExecutionContext, value: Any) -> Any:
    """An input's value, read from the store now if the IO manager did not load it (a run-cache
    hit) and the asset needs it after all (evaluation re-scoring a different champion)."""
    if isinstance(value, NotLoaded):
        return context.resources.io_manager.stored_value(value.ref)
    return value


def _materializes_assets(step: Any) -> bool:
    """Whether the loading step makes assets; check steps only read what they check."""
    return bool(step.get_output_asset_keys())


def _refuse_failed_checks(version: VersionManifest) -> None:
    """Within one run, a failed blocking check stops everything downstream. A later run that
    selects only downstream assets would still load the version the upstream last recorded, so
    a version its checks failed on is refused here too, unless it is pinned on purpose."""
    failed = version.flags.get(FAILED_CHECKS_FLAG)
    if not failed:
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


def _plain_facts(metadata: Any) -> dict[str, Any]:
    """The plain facts an asset reported (row counts, metrics, source checksum, JSON entries), for
    the manifest; tables and markdown (plots) stay in Dagster."""
    facts = {}
    for key, value in dict(metadata or {}).items():
        if isinstance(value, dg.MarkdownMetadataValue) or key == CONFIG_USED_KEY:
            continue
        raw = value.data if isinstance(value, dg.JsonMetadataValue) else getattr(value, "value", value)
        if isinstance(raw, float) and raw != raw:
            continue
        if isinstance(raw, (str, int, float, bool, dict, list)):
            facts[key] = raw
    return facts


def _config_used(context: dg.OutputContext, config: dict[str, Any]) -> dict[str, Any]:
    """What the asset said of its config applied (`CONFIG_USED_KEY`), else the step's whole config.
    Recorded with the version and given to W&B; the run cache keys on the whole config."""
    used = context.output_metadata.get(CONFIG_USED_KEY)
    if isinstance(used, dg.JsonMetadataValue) and isinstance(used.data, dict):
        return dict(used.data)
    return config


def _config_of(step: Any) -> dict[str, Any]:
    """The step's run config with defaults filled in: recorded with the version, and part of its
    run-cache key."""
    if step is None:
        return {}
    config = step.op_config
    return dict(config) if isinstance(config, dict) else {}


def loaded_artifacts(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> dict[str, str]:
    """Asset name -> the exact `name:vN` this step loaded, as the IO manager resolved it (pins
    included), so an asset or a check names, flags or promotes exactly the version it used."""
    step = context.op_execution_context.get_step_execution_context()
    return context.resources.io_manager.loaded_in_step(step.run_id, step.step.key)


def stored_value(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext, ref: str) -> Any:
    """A stored version read outside the step's inputs, decoded at most once in the run."""
    return context.resources.io_manager.stored_value(ref)


def run_resolver(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> VersionResolver:
    """The run's version resolver, for aliases an asset or check reads (prod, reference)."""
    return context.resources.io_manager.resolver(context)


def reused_outputs(
    context: dg.AssetExecutionContext, extra_inputs: Mapping[str, str] | None = None
) -> dict[str, CacheHit] | None:
    """Run-cache hits for every selected asset of this step, or None: compute."""
    return context.resources.io_manager.reuse(context, extra_inputs)
