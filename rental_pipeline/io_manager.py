"""The Dagster face of the artifact store: every asset output becomes a versioned artifact.

The store decides versions (a new one only when the bytes change) and the Dagster instance
remembers which version each materialization produced, so an input is loaded as the exact version
its upstream's latest materialization recorded, not whatever `latest` points at by then (another
run may have moved it). A pin in config overrides that, e.g. to evaluate `inference_pipeline:prod`.

New versions are mirrored to W&B by a worker process while the run goes on; the IO manager
waits for those W&B runs when Dagster tears it down (the end of the run with the in-process
executor, the end of each step with a process per step), and logs where each one landed. Loaded
versions are kept decoded until then, so checks and the downstream asset read a version once.
"""

from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

import rental_pipeline
from rental_pipeline.assets.metadata import displayed
from rental_pipeline.store import (
    FAILED_CHECKS_FLAG,
    ArtifactStore,
    MirrorQueue,
    ValueCache,
    VersionManifest,
    WandbMirror,
    default_root,
    parse_ref,
    project_name,
)


ARTIFACT_KEY = "artifact"
ARTIFACT_TYPE_KEY = "artifact_type"
# Output metadata naming versions an asset read from the store itself (not as Dagster inputs),
# comma-separated, so they still appear in its lineage.
USES_ARTIFACTS_KEY = "uses_artifacts"
# Output metadata holding the part of the step's config that applied (e.g. a synthetic source's
# row count only when no file was given); recorded as the version's config instead of all of it.
CONFIG_USED_KEY = "config_used"


class ArtifactStoreResource(dg.ConfigurableResource):
    """Where the store lives; shared by the IO manager, the checks and the promotion logic."""

    root: str | None = Field(
        default=None, description="Store folder. Empty: $RENTAL_PIPELINE_HOME/artifacts (default .rental_pipeline)."
    )

    def store(self) -> ArtifactStore:
        return ArtifactStore(self.root or default_root())


class ArtifactIOManager(dg.ConfigurableIOManager):
    """Stores each output as `asset_name:vN` and mirrors new versions to Weights & Biases."""

    artifact_store: dg.ResourceDependency[ArtifactStoreResource]
    wandb_mode: str | None = Field(
        default=None,
        description="offline, online or disabled. Empty: WANDB_MODE, else online with WANDB_API_KEY, else offline.",
    )
    wandb_project: str | None = Field(default=None, description="W&B project. Empty: WANDB_PROJECT or nyc_airbnb.")
    pins: dict[str, str] = Field(
        default_factory=dict,
        description="Load these inputs at a fixed version or alias instead of the recorded one, "
        "e.g. {inference_pipeline: prod} or {clean_sample: v3}.",
    )
    _loaded: dict[tuple[str, str], list[str]] = PrivateAttr(default_factory=dict)
    _mirrors: MirrorQueue | None = PrivateAttr(default=None)
    _values: ValueCache = PrivateAttr(default_factory=ValueCache)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._values.clear()
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
        self._mirrors = None

    def _mirror_queue(self, store: ArtifactStore) -> MirrorQueue:
        if self._mirrors is None:
            self._mirrors = MirrorQueue(WandbMirror(store, mode=self.wandb_mode))
        return self._mirrors

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        store = self.artifact_store.store()
        name = context.asset_key.to_user_string()
        spec = context.asset_spec
        inputs = list(self._loaded.get((context.run_id, context.step_key), []))
        used = context.output_metadata.get(USES_ARTIFACTS_KEY)
        if used is not None:
            inputs += [ref.strip() for ref in str(getattr(used, "value", used)).split(",") if ref.strip()]
        config = _config_used(context)
        result = store.save(
            name,
            obj,
            type=str(spec.metadata.get(ARTIFACT_TYPE_KEY, name)),
            description=spec.description or "",
            metadata={"config": config, "facts": _plain_facts(context.output_metadata)},
            run_id=context.run_id,
            code_version=spec.code_version or rental_pipeline.__version__,
            inputs=inputs,
        )
        version = result.version
        # The store keeps full precision; the page shows floats rounded (these override the asset's).
        metadata: dict[str, Any] = {
            **displayed(context.output_metadata),
            ARTIFACT_KEY: version.ref,
            "artifact_digest": version.digest,
            # a snapshot: `prod` may move to this version later (see model_evaluation, `artifacts show`)
            "aliases_at_materialization": ", ".join(version.aliases),
            "artifact_version_new": result.created,
            "artifact_size_bytes": version.size,
            "artifact_inputs": ", ".join(version.inputs) or "none",
            "artifact_path": dg.MetadataValue.path(str(store.layout.collection(name))),
        }
        if result.created:
            mirrors = self._mirror_queue(store)
            if mirrors.mode == "disabled":
                metadata["wandb_run"] = "not mirrored (W&B disabled)"
            else:
                project = project_name(self.wandb_project)
                run_id = mirrors.submit(version, job_type=name, project=project, group=context.run_id, config=config)
                metadata["wandb_run"] = f"{run_id} ({mirrors.mode}, project {project})"
        else:
            metadata["wandb_run"] = f"unchanged: {version.ref} was mirrored when first written"
        context.log.info(f"{'Stored new' if result.created else 'Reused'} artifact {version.ref} ({version.digest})")
        context.add_output_metadata(metadata)

    def load_input(self, context: dg.InputContext) -> Any:
        store = self.artifact_store.store()
        ref = self.input_ref(context)
        version = store.get(ref)
        step = _step_context(context)
        if step is not None:  # outside a run (e.g. an asset value loader) there is nothing to record
            if _materializes_assets(step) and not self.pins.get(version.name):
                _refuse_failed_checks(version)
            self._loaded.setdefault((step.run_id, step.step.key), []).append(ref)
            context.add_input_metadata({ARTIFACT_KEY: ref})
        return self._values.get(version, lambda: store.load(ref))

    def input_ref(self, context: dg.InputContext) -> str:
        """The exact `name:vN` to load: a configured pin, else the version the upstream's latest
        materialization recorded, else (no record, e.g. a new Dagster instance) the `latest` alias."""
        name = context.asset_key.to_user_string()
        store = self.artifact_store.store()
        pin = self.pins.get(name)
        if pin:
            return store.get(pin if ":" in pin else f"{name}:{pin}").ref
        instance = _instance(context)
        event = instance.get_latest_materialization_event(context.asset_key) if instance else None
        if event is not None and event.asset_materialization is not None:
            recorded = event.asset_materialization.metadata.get(ARTIFACT_KEY)
            if recorded is not None:
                return str(parse_ref(str(recorded.value)))
        return store.get(f"{name}:latest").ref


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


def _step_context(context: dg.InputContext) -> Any:
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


def _config_used(context: dg.OutputContext) -> dict[str, Any]:
    """What the asset said of its config applied (`CONFIG_USED_KEY`), else the step's whole config."""
    used = context.output_metadata.get(CONFIG_USED_KEY)
    if isinstance(used, dg.JsonMetadataValue) and isinstance(used.data, dict):
        return dict(used.data)
    return _op_config(context)


def _op_config(context: dg.OutputContext) -> dict[str, Any]:
    """The step's run config, so the W&B run shows what produced the artifact."""
    try:
        config = context.step_context.op_config
    except Exception:  # noqa: BLE001 - no step context (e.g. a direct IO manager call): nothing to add
        return {}
    return dict(config) if isinstance(config, dict) else {}


def loaded_artifacts(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> dict[str, str]:
    """Asset name -> the exact `name:vN` this step loaded, read back from its LOADED_INPUT events.

    Lets an asset or a check say which versions it worked on (e.g. which model it evaluated) without
    repeating the IO manager's choice between recorded version and pin.
    """
    loaded = {}
    step_key = context.op_execution_context.get_step_execution_context().step.key
    for entry in context.instance.all_logs(context.run.run_id, of_type=dg.DagsterEventType.LOADED_INPUT):
        event = entry.dagster_event
        if event is None or event.step_key != step_key:
            continue
        ref = event.event_specific_data.metadata.get(ARTIFACT_KEY)
        if ref is not None:
            loaded[str(ref.value).split(":")[0]] = str(ref.value)
    return loaded
