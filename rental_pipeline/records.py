"""What a materialization records of its artifact, and how a later run reads that record back.

The store keeps the bytes; Dagster's event log keeps, per materialization, which version it was,
with its digest (also its data version) and where the store that made it keeps it. A later run
resolves its inputs from those entries (`rental_pipeline.versions`) and shows a reused version
with what its first run recorded, so the keys are written and read in this one module and cannot
drift apart. Everything else on the page is for people: the asset's own entries, with floats
rounded for reading (the manifest keeps every digit).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from rental_pipeline.assets.metadata import displayed
from rental_pipeline.store import ArtifactStore, VersionManifest
from rental_pipeline.versions import Recorded
from rental_pipeline.weeks import dagster_asset, split_name, store_name

ARTIFACT_KEY = "artifact"
ARTIFACT_TYPE_KEY = "artifact_type"
# The store digest of the version (also its Dagster data version), and where the store that made
# it keeps the artifact: together they tell a version from an equal number in another store.
DIGEST_KEY = "artifact_digest"
PATH_KEY = "artifact_path"
INPUTS_KEY = "artifact_inputs"
DATA_VERSION_TAG = "dagster/data_version"
# Output metadata naming versions an asset read from the store itself (not as Dagster inputs),
# comma-separated, so they still appear in its lineage.
USES_ARTIFACTS_KEY = "uses_artifacts"
# Output metadata holding the part of the step's config that applied (e.g. a synthetic source's
# row count only when no file was given); recorded as the version's config instead of all of it.
CONFIG_USED_KEY = "config_used"


def materialization_metadata(
    store: ArtifactStore, version: VersionManifest, created: bool, asset_metadata: Mapping[str, Any]
) -> dict[str, Any]:
    """The entries the IO manager adds to a materialization: the version, and the asset's floats
    rounded (these override the asset's own entries on the page)."""
    return {
        **displayed(asset_metadata),
        ARTIFACT_KEY: version.ref,
        DIGEST_KEY: version.digest,
        # a snapshot: `prod` may move to this version later (see model_evaluation, `artifacts show`)
        "aliases_at_materialization": ", ".join(version.aliases),
        "artifact_version_new": created,
        "artifact_size_bytes": version.size,
        INPUTS_KEY: ", ".join(version.inputs) or "none",
        PATH_KEY: dg.MetadataValue.path(str(store.layout.collection(version.name))),
        "code_version": version.code_version or "unknown",
    }


def uses_artifacts(asset_metadata: Mapping[str, Any]) -> dict[str, str]:
    """Asset name -> version, for the versions an asset says it read from the store itself."""
    used = asset_metadata.get(USES_ARTIFACTS_KEY)
    refs = str(getattr(used, "value", used)).split(",") if used is not None else []
    return {ref.strip().split(":")[0]: ref.strip() for ref in refs if ref.strip()}


def config_used(asset_metadata: Mapping[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """What the asset said of its config applied (`CONFIG_USED_KEY`), else the step's whole config.
    Recorded with the version and given to W&B; the run cache keys on the whole config."""
    used = asset_metadata.get(CONFIG_USED_KEY)
    if isinstance(used, dg.JsonMetadataValue) and isinstance(used.data, dict):
        return dict(used.data)
    return config


def plain_facts(asset_metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The plain facts an asset reported (row counts, metrics, source checksum, JSON entries), for
    the manifest; tables and markdown (plots) stay in Dagster."""
    facts = {}
    for key, value in dict(asset_metadata or {}).items():
        if isinstance(value, dg.MarkdownMetadataValue) or key == CONFIG_USED_KEY:
            continue
        raw = value.data if isinstance(value, dg.JsonMetadataValue) else getattr(value, "value", value)
        if isinstance(raw, float) and raw != raw:
            continue
        if isinstance(raw, (str, int, float, bool, dict, list)):
            facts[key] = raw
    return facts


# -- reading the records back ------------------------------------------------------------------


def recorded(materialization: dg.AssetMaterialization) -> Recorded | None:
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


def recorded_in_run(instance: dg.DagsterInstance | None, run_id: str | None, name: str) -> Recorded | None:
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
        if event.asset_key == dg.AssetKey(dagster_asset(name)):
            own = recorded(materialization)
            if own is not None and own.ref.partition(":")[0] == name:  # this week's, not another's
                return own
        inputs = materialization.metadata.get(INPUTS_KEY)
        for ref in str(inputs.value if inputs is not None else "").split(","):
            if ref.strip().split(":")[0] == name:
                read = Recorded(ref.strip())  # no digest recorded for inputs: checked to exist
    return read


def recorded_last(instance: dg.DagsterInstance | None, name: str) -> Recorded | None:
    """The version of ``name`` the instance's latest materialization of it recorded, in whichever
    store that run used."""
    if instance is None:
        return None
    week = split_name(name)[1]
    if week is not None:  # a week (`raw_data.<week>`): that partition's latest materialization
        found = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(dagster_asset(name)), asset_partitions=[week]), limit=1
        ).records
        return recorded(found[0].asset_materialization) if found and found[0].asset_materialization else None
    event = instance.get_latest_materialization_event(dg.AssetKey(name))
    if event is None or event.asset_materialization is None:
        return None
    return recorded(event.asset_materialization)


def materializations(instance: dg.DagsterInstance, run_id: str) -> dict[str, dict[str, Any]]:
    """Store name -> the metadata of its last materialization in run ``run_id``."""
    try:
        entries = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    except Exception:  # noqa: BLE001 - a run deleted from this instance: fall back to the manifest
        return {}
    found: dict[str, dict[str, Any]] = {}
    for entry in entries:
        event = entry.dagster_event
        if event is not None and event.asset_key is not None:
            # by store name: a week's materialization is that week's artifact (`raw_data.<week>`)
            name = store_name(event.asset_key.to_user_string(), event.partition)
            found[name] = dict(event.step_materialization_data.materialization.metadata)
    return found
