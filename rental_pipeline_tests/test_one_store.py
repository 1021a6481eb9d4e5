"""One store per run, whichever way it is named (run config, `$RENTAL_PIPELINE_STORE`, the default
under `$RENTAL_PIPELINE_HOME`): every version, flag and alias move of the run lands there, made by
the IO manager, the checks, promotion, batch predictions and the W&B mirror alike. And a version the
Dagster instance recorded in one store is never loaded by number from another."""

from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from rental_pipeline.checks import all_checks
from rental_pipeline.definitions import all_assets, default_resources
from rental_pipeline.home import open_store
from rental_pipeline.io_manager import REUSED_FROM_KEY, ArtifactStoreResource
from rental_pipeline.promotion import PROMOTION_FLAG
from rental_pipeline.run_cache import RUN_CACHE_FLAG
from rental_pipeline.store import FAILED_CHECKS_FLAG, ArtifactStore
from rental_pipeline.tracking.pending import PendingRuns
from rental_pipeline_tests.conftest import materialized, only, run_config, selected_ops
from rental_pipeline_tests.store.backends import s3_root

ASSETS = {
    "raw_data", "clean_sample", "trainval_data", "test_data", "inference_pipeline", "model_evaluation",
    "batch_predictions", "sweep_leaderboard",
}
SPLIT = ["raw_data", "clean_sample", "trainval_data", "test_data"]


def with_store(config: dict, root: str | None) -> dict:
    """Run config naming the store root as the README says, or leaving it to the environment."""
    if root is None:
        return config
    return {**config, "resources": {**config.get("resources", {}), "artifact_store": {"config": {"root": root}}}}


def run(
    instance: dg.DagsterInstance,
    config: dict,
    root: str | None = None,
    selection: Any = None,
    *,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """The code location's assets, checks and resources, with the store root as run config; the
    ops config is cut to the selection (Dagster refuses config for ops a run does not run)."""
    if selection is not None:
        config = {**config, **only(config, *selected_ops(selection))}
    return dg.materialize(
        [*all_assets, *all_checks],
        instance=instance,
        selection=selection,
        run_config=with_store(config, root),
        resources=default_resources(),
        raise_on_error=raise_on_error,
    )


def found_in(location: str | Path) -> list[str]:
    """What a run left under a store root: artifacts, and the W&B mirror's records (empty: nothing).
    A folder nobody wrote to is not even created."""
    if isinstance(location, Path) and not location.exists():
        return []
    store = open_store(location)
    return store.names() + (["mirror/"] if (store.root / "mirror").exists() else [])


def moves(store: ArtifactStore, name: str, alias: str) -> list[Any]:
    return [move for move in store.alias_log(name) if move.alias == alias]


def assert_everything_in(store: ArtifactStore, first: dg.ExecuteInProcessResult, again: dg.ExecuteInProcessResult,
                         failing: dg.ExecuteInProcessResult) -> None:
    # versions: each asset once, reported with the chosen store's path
    assert set(store.names()) == ASSETS
    for name, metadata in materialized(first).items():
        assert store.versions(name) == [0], name
        assert metadata["artifact"] == f"{name}:v0"
        assert metadata["artifact_digest"] == store.get(f"{name}:v0").digest
        assert metadata["artifact_path"] == store.layout.collection(name)
    # the run cache looked in the same store: the unchanged run reused all of the first's versions
    assert {name: m.get(REUSED_FROM_KEY) for name, m in materialized(again).items()} == {
        name: first.run_id for name in ASSETS
    }
    for name in ASSETS:
        assert store.flags(f"{name}:v0")[RUN_CACHE_FLAG], name
    # promotion (model_evaluation): prod moved, and the decision flagged, in this store
    assert store.aliases("inference_pipeline")["prod"] == 0
    assert [m.actor for m in moves(store, "inference_pipeline", "prod")] == [f"dagster run {first.run_id}"]
    assert store.flags("inference_pipeline:v0")[PROMOTION_FLAG]  # decided again by the unchanged run
    # the drift check's reference, and a failed check's flag
    assert store.aliases("clean_sample")["reference"] == 0
    assert not failing.success
    assert "row_count" in store.flags("clean_sample:v0")[FAILED_CHECKS_FLAG]
    # batch predictions priced with this store's prod model
    assert store.get("batch_predictions:v0").inputs == ("inference_pipeline:v0",)
    # `latest` moved by the writes of the first run, nowhere else
    for name in ASSETS:
        assert [(m.to_version, m.run_id) for m in moves(store, name, "latest")] == [(0, first.run_id)], name
    # the W&B mirror recorded its runs with this store
    assert PendingRuns(store.root).all() or PendingRuns(store.root).synced()


def three_runs(instance: dg.DagsterInstance, root: str | None) -> tuple[dg.ExecuteInProcessResult, ...]:
    """The whole graph, the whole graph again unchanged, and a strict row count that fails
    clean_sample's checks."""
    first = run(instance, run_config(), root)
    again = run(instance, run_config(), root)
    strict = run_config(clean_sample_checks={"min_rows": 5_000})
    failing = run(instance, strict, root, selection=["raw_data", "clean_sample"], raise_on_error=False)
    return first, again, failing


@pytest.mark.slow
def test_a_root_in_run_config_holds_everything_the_run_makes(instance, isolated_state, monkeypatch):
    """Run config beats the environment variable, which beats the default; neither gets anything."""
    decoy = isolated_state / "from-environment"
    monkeypatch.setenv("RENTAL_PIPELINE_STORE", str(decoy))
    chosen = isolated_state / "from-run-config"
    assert_everything_in(open_store(chosen), *three_runs(instance, str(chosen)))
    assert found_in(decoy) == found_in(isolated_state / "home" / "artifacts") == []


@pytest.mark.slow
def test_a_root_in_the_environment_holds_everything_the_run_makes(instance, isolated_state, monkeypatch):
    chosen = isolated_state / "from-environment"
    monkeypatch.setenv("RENTAL_PIPELINE_STORE", str(chosen))
    assert_everything_in(open_store(chosen), *three_runs(instance, None))
    assert found_in(isolated_state / "home" / "artifacts") == []


@pytest.mark.slow
def test_the_default_store_holds_everything_the_run_makes(instance, isolated_state):
    assert_everything_in(open_store(isolated_state / "home" / "artifacts"), *three_runs(instance, None))


@pytest.mark.slow
def test_an_s3_root_in_run_config_holds_everything_the_run_makes(instance, isolated_state, s3_credentials, monkeypatch):
    decoy = s3_root(s3_credentials, "decoy")
    monkeypatch.setenv("RENTAL_PIPELINE_STORE", decoy)
    chosen = s3_root(s3_credentials, "chosen")
    assert_everything_in(open_store(chosen), *three_runs(instance, chosen))
    assert found_in(decoy) == found_in(isolated_state / "home" / "artifacts") == []


@pytest.mark.slow
def test_an_s3_root_in_the_environment_holds_everything_the_run_makes(instance, isolated_state, s3_credentials,
                                                                     monkeypatch):
    chosen = s3_root(s3_credentials, "chosen")
    monkeypatch.setenv("RENTAL_PIPELINE_STORE", chosen)
    assert_everything_in(open_store(chosen), *three_runs(instance, None))
    assert found_in(isolated_state / "home" / "artifacts") == []


def test_the_io_manager_and_the_assets_get_one_resource_from_run_config(instance, tmp_path, isolated_state,
                                                                        no_mirror):
    """The wiring the whole-graph tests rely on, in a run of one asset: the root in run config
    reaches the IO manager too, and with none both use the default store."""
    roots: list[tuple[Any, Any]] = []

    @dg.asset
    def probe(context: dg.AssetExecutionContext, artifact_store: ArtifactStoreResource) -> dict:
        roots.append((artifact_store.store(), context.resources.io_manager.artifact_store.store()))
        return {"seen": 1}

    for root in (str(tmp_path / "configured"), None):
        assert dg.materialize(
            [probe], instance=instance, resources=default_resources(), run_config=with_store({}, root)
        ).success
    (configured, its_io), (default, default_io) = roots
    assert configured is its_io and configured.root == tmp_path / "configured"
    assert default is default_io and default.root == isolated_state / "home" / "artifacts"
    assert open_store(tmp_path / "configured").versions("probe") == [0]
    assert open_store(default.root).versions("probe") == [0]


# -- a recorded version, looked up in the store the run uses ---------------------------------


def failure_of(result: dg.ExecuteInProcessResult) -> str:
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return failure.step_failure_data.user_failure_data.description


@pytest.mark.slow
def test_a_version_recorded_in_another_store_is_refused_not_loaded_by_number(instance, tmp_path, monkeypatch):
    """One Dagster home, the store switched between runs: `trainval_data:v0` recorded by the
    latest materialization is another store's v0. The downstream refuses it, saying which version,
    which digest, which store and what to do, instead of training on whatever v0 this store has."""
    store_a, store_b = str(tmp_path / "a"), str(tmp_path / "b")

    def on(store: str, config: dict, selection: list[str], **options: Any) -> dg.ExecuteInProcessResult:
        monkeypatch.setenv("RENTAL_PIPELINE_STORE", store)
        return run(instance, config, selection=selection, **options)

    first = on(store_a, run_config(), SPLIT)
    digest_a = materialized(first)["trainval_data"]["artifact_digest"]

    # Store B has no trainval_data at all.
    missing = on(store_b, run_config(), ["inference_pipeline"], raise_on_error=False)
    assert not missing.success
    message = failure_of(missing)
    recorded = "trainval_data: the version recorded by its latest materialization is trainval_data:v0"
    assert f"{recorded} (digest {digest_a})" in message
    assert f"this run's store at {store_b} has no trainval_data:v0" in message
    assert "Re-materialize trainval_data into this store" in message and "pins: {trainval_data: vN}" in message
    assert "inference_pipeline" not in open_store(store_b).names()

    # Store B gets its own v0, from other listings: the instance now records B's v0.
    other = on(store_b, run_config(raw={"seed": 8}), SPLIT)
    digest_b = materialized(other)["trainval_data"]["artifact_digest"]
    assert digest_b != digest_a and materialized(other)["trainval_data"]["artifact"] == "trainval_data:v0"

    # Back on store A, its v0 has the same number and other bytes: refused, not silently used.
    mixed = on(store_a, run_config(), ["inference_pipeline"], raise_on_error=False)
    assert not mixed.success
    message = failure_of(mixed)
    assert f"trainval_data:v0 (digest {digest_b})" in message
    assert f"trainval_data:v0 in this run's store at {store_a} holds other bytes (digest {digest_a})" in message
    assert "inference_pipeline" not in open_store(store_a).names()

    # The store that holds what was recorded reads it; a pin reads store A's own v0 on purpose.
    on_b = on(store_b, run_config(), ["inference_pipeline"])
    assert materialized(on_b)["inference_pipeline"]["artifact_inputs"] == "trainval_data:v0"
    assert open_store(store_b).get("inference_pipeline:v0").inputs == ("trainval_data:v0",)
    pinned = {**run_config(), "resources": {"io_manager": {"config": {"pins": {"trainval_data": "v0"}}}}}
    on_a = on(store_a, pinned, ["inference_pipeline"])
    assert on_a.success and open_store(store_a).get("inference_pipeline:v0").inputs == ("trainval_data:v0",)
