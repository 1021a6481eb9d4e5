"""Every asset stored as a versioned artifact: versions, reuse, lineage, pins and the W&B mirror."""

import os
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from rental_pipeline.definitions import all_assets, default_resources
from rental_pipeline.home import open_store
from rental_pipeline.io_manager import ArtifactIOManager, ArtifactStoreResource
from rental_pipeline.store import ArtifactNotFoundError, ArtifactStore
from rental_pipeline_tests.conftest import materialize, materialized, only, run_config

LINEAGE = {
    "raw_data": (),
    "clean_sample": ("raw_data:v0",),
    "trainval_data": ("clean_sample:v0",),
    "test_data": ("clean_sample:v0",),
    "inference_pipeline": ("trainval_data:v0",),
    "model_evaluation": ("inference_pipeline:v0", "test_data:v0"),
    "batch_predictions": ("inference_pipeline:v0",),
    "sweep_leaderboard": ("trainval_data:v0",),
}


@pytest.fixture
def store() -> ArtifactStore:
    return open_store()


def loaded_refs(result: dg.ExecuteInProcessResult, step: str) -> list[str]:
    """The versions a step read, as its materializations record them (not as load observations)."""
    refs = set()
    for event in result.get_asset_materialization_events():
        if event.step_key == step:
            recorded = event.materialization.metadata["artifact_inputs"].value
            refs.update(ref.strip() for ref in recorded.split(",") if ref.strip() != "none")
    return sorted(refs)


@pytest.mark.slow
def test_every_asset_becomes_version_zero_with_its_lineage(instance, store):
    metadata = materialized(materialize(instance))
    for name, inputs in LINEAGE.items():
        version = store.get(f"{name}:latest")
        assert metadata[name]["artifact"] == version.ref == f"{name}:v0"
        assert metadata[name]["artifact_digest"] == version.digest
        assert metadata[name]["artifact_version_new"] is True
        assert "latest" in metadata[name]["aliases_at_materialization"]
        assert metadata[name]["artifact_size_bytes"] == version.size > 0
        assert tuple(sorted(version.inputs)) == inputs
    assert store.get("inference_pipeline:v0").type == "model_export"
    assert store.get("raw_data:v0").type == "raw_data"


@pytest.mark.slow
def test_stored_values_round_trip_with_their_types(instance, store):
    materialize(instance)
    clean = store.load("clean_sample:v0")
    assert pd.api.types.is_datetime64_any_dtype(clean["last_review"])
    assert clean["last_review"].isna().any() and clean["reviews_per_month"].isna().any()
    assert clean["price"].dtype == "int64" and clean["name"].dtype == "str"
    model = store.load("inference_pipeline:v0")
    evaluation = store.load("model_evaluation:v0")
    test = store.load("test_data:v0")
    from rental_pipeline.evaluation import evaluate_pipeline

    assert evaluate_pipeline(model, test).mae == pytest.approx(evaluation["test_mae"])


@pytest.mark.slow
@pytest.mark.parametrize("model", ["random_forest", "boosted"])
def test_running_again_unchanged_creates_no_new_version(instance, store, model):
    """Identical inputs and config give identical model bytes, so nothing new is stored."""
    config = run_config(training={"model": model})
    materialize(instance, config)
    again = materialized(materialize(instance, config))
    assert {name: m["artifact"] for name, m in again.items()} == {name: f"{name}:v0" for name in LINEAGE}
    assert not any(m["artifact_version_new"] for m in again.values())
    assert all(store.versions(name) == [0] for name in LINEAGE)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["random_forest", "boosted"])
def test_a_stored_model_equals_what_decoding_its_file_gives(store, model):
    """The IO manager hands the next step of the run the model it has just stored instead of
    decoding the file again; that is only right if decoding gives the same model."""
    from rental_pipeline.cleaning import clean_listings
    from rental_pipeline.model_params import BoostingParams, ForestParams
    from rental_pipeline.split import split_listings
    from rental_pipeline.store import codec_for
    from rental_pipeline.synthetic import generate_listings
    from rental_pipeline.training import train_inference_pipeline

    trainval, test = split_listings(clean_listings(generate_listings(rows=1_500, seed=3))[0])
    fitted = train_inference_pipeline(
        trainval,
        model=model,
        forest=ForestParams(n_estimators=10, max_depth=8, n_jobs=1, oob_score=False),
        boosting=BoostingParams(max_iter=20, learning_rate=0.3, catboost_iterations=20),
    ).pipeline
    codec = codec_for(fitted)
    assert codec.round_trips
    version = store.save("inference_pipeline", fitted, type="model_export").version
    decoded = store.load(version.ref)
    assert type(decoded) is type(fitted)
    assert decoded.get_params(deep=False).keys() == fitted.get_params(deep=False).keys()
    columns = list(fitted.feature_names_in_)  # each model's own input columns
    assert (decoded.predict(test[columns]) == fitted.predict(test[columns])).all()


@pytest.mark.slow
def test_an_evaluation_of_the_kept_model_equals_one_of_the_decoded_file(instance, store):
    """In one run the evaluation scores the model the run has just stored, kept in memory; a later
    run scores it decoded from the store. Both make the same bytes, so the same version."""
    first = materialized(materialize(instance, selection=dg.AssetSelection.assets("model_evaluation").upstream()))
    assert first["model_evaluation"]["artifact_version_new"] is True
    forced = dg.materialize(
        all_assets,
        instance=instance,
        selection=["model_evaluation"],
        resources=default_resources(),
        tags={"rental_pipeline/force": "true"},
    )
    again = materialized(forced)["model_evaluation"]
    assert "reused_from_run" not in again  # computed, not taken from the run cache
    assert again["artifact"] == "model_evaluation:v0" and again["artifact_version_new"] is False
    assert again["artifact_digest"] == first["model_evaluation"]["artifact_digest"]


@pytest.mark.slow
def test_a_config_change_versions_only_what_it_changes(instance, store):
    materialize(instance)
    changed = materialized(
        materialize(
            instance,
            run_config(training={"max_tfidf_features": 3}),
            selection=dg.AssetSelection.assets("clean_sample").downstream(),
        )
    )
    assert changed["clean_sample"]["artifact"] == "clean_sample:v0"
    assert changed["trainval_data"]["artifact_version_new"] is False
    assert changed["inference_pipeline"]["artifact"] == "inference_pipeline:v1"
    assert changed["model_evaluation"]["artifact"] == "model_evaluation:v1"
    assert store.get("model_evaluation:v1").inputs == ("inference_pipeline:v1", "test_data:v0")


@pytest.mark.slow
def test_inputs_load_the_recorded_version_not_whatever_latest_is(instance, store):
    materialize(instance)
    # Another process writes a newer clean_sample behind Dagster's back: latest moves to v1.
    tampered = store.load("clean_sample:v0").head(300)
    store.save("clean_sample", tampered, type="clean_sample")
    assert store.get("clean_sample:latest").ref == "clean_sample:v1"

    result = materialize(instance, {}, selection=["trainval_data"])
    assert loaded_refs(result, "split_listings") == ["clean_sample:v0"]
    assert store.get("trainval_data:latest").inputs == ("clean_sample:v0",)


@pytest.mark.slow
def test_a_pin_evaluates_the_prod_model(instance, store):
    materialize(instance)
    store.set_alias("inference_pipeline:v0", "prod", reason="first model")
    materialize(instance, run_config(training={"max_tfidf_features": 2}),
                selection=["inference_pipeline"])
    assert store.get("inference_pipeline:latest").ref == "inference_pipeline:v1"

    artifact_store = ArtifactStoreResource()
    pinned = dg.materialize(
        all_assets,
        instance=instance,
        selection=["model_evaluation"],
        resources={
            "artifact_store": artifact_store,
            "io_manager": ArtifactIOManager(artifact_store=artifact_store, pins={"inference_pipeline": "prod"}),
        },
    )
    assert loaded_refs(pinned, "model_evaluation") == ["inference_pipeline:v0", "test_data:v0"]
    assert store.get("model_evaluation:latest").inputs == ("inference_pipeline:v0", "test_data:v0")


@pytest.mark.slow
def test_new_versions_are_mirrored_to_offline_wandb_runs(instance, isolated_state):
    result = materialize(instance)
    metadata = materialized(result)
    run_ids = {name: m["wandb_run"].split()[0] for name, m in metadata.items()}
    assert all(
        "(offline, project nyc_airbnb): waits for `rental-pipeline artifacts sync`" in m["wandb_run"]
        for m in metadata.values()
    )
    assert len(set(run_ids.values())) == len(run_ids)  # one W&B run per asset
    # The runs were made by the W&B worker process; the run is over, so each has its folder by now.
    wandb_root = Path(isolated_state / "wandb")
    for name, run_id in run_ids.items():
        (run_dir,) = wandb_root.rglob(f"offline-run-*-{run_id}")
        assert list(run_dir.glob(f"run-{run_id}.wandb")), name
    logged = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.user_message.startswith("W&B run ")
    ]
    assert sorted(message.split()[2] for message in logged) == sorted(run_ids.values())

    again = materialized(materialize(instance))
    assert all(m["wandb_run"].startswith("unchanged") for m in again.values())


@pytest.mark.slow
def test_a_failing_mirror_is_logged_and_loses_no_version(instance, isolated_state):
    # W&B itself refuses the project name: the run still succeeds and the version stays stored.
    artifact_store = ArtifactStoreResource()
    result = dg.materialize(
        all_assets,
        instance=instance,
        selection=["raw_data"],
        run_config=only(run_config(), "raw_data"),
        resources={
            "artifact_store": artifact_store,
            "io_manager": ArtifactIOManager(artifact_store=artifact_store, wandb_project="no/slashes#here"),
        },
    )
    assert result.success
    assert open_store().get("raw_data:latest").ref == "raw_data:v0"
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if "could not mirror" in e.user_message]
    assert len(warnings) == 1 and "raw_data:v0" in warnings[0] and "it stays stored" in warnings[0]


@pytest.mark.slow
def test_a_store_root_in_config_is_honoured(instance, tmp_path):
    artifact_store = ArtifactStoreResource(root=str(tmp_path / "elsewhere"))
    dg.materialize(
        all_assets,
        instance=instance,
        selection=["raw_data"],
        run_config=only(run_config(), "raw_data"),
        resources={"artifact_store": artifact_store, "io_manager": ArtifactIOManager(artifact_store=artifact_store)},
    )
    assert ArtifactStore(tmp_path / "elsewhere").get("raw_data:latest").ref == "raw_data:v0"
    assert "raw_data" not in open_store().names()


def test_default_resources_follow_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RENTAL_PIPELINE_HOME", str(tmp_path / "home"))
    assert default_resources()["artifact_store"].store().root == tmp_path / "home" / "artifacts"
    with dg.build_resources(default_resources()) as resources:
        assert resources.io_manager.artifact_store.store().root == tmp_path / "home" / "artifacts"
    # the IO manager takes the store resource as configured for the run, like the assets do
    config = {"artifact_store": {"config": {"root": str(tmp_path / "configured")}}}
    with dg.build_resources(default_resources(), resource_config=config) as resources:
        assert resources.artifact_store.store().root == tmp_path / "configured"
        assert resources.io_manager.artifact_store is resources.artifact_store


def test_a_resource_keeps_one_store_while_its_root_stays(monkeypatch, tmp_path):
    configured = ArtifactStoreResource(root=str(tmp_path / "a"))
    assert configured.store() is configured.store()
    assert ArtifactStoreResource(root=str(tmp_path / "a")).store() is not configured.store()
    from_environment = ArtifactStoreResource()
    monkeypatch.setenv("RENTAL_PIPELINE_STORE", str(tmp_path / "b"))
    first = from_environment.store()
    assert first.root == tmp_path / "b" and from_environment.store() is first
    monkeypatch.setenv("RENTAL_PIPELINE_STORE", str(tmp_path / "c"))
    assert from_environment.store().root == tmp_path / "c"


def test_each_run_gets_a_store_that_lasts_it_and_no_other_run(instance, tmp_path):
    """Dagster hands each run a fresh copy of the resource: within a run every call returns the one
    store (its manifest cache lasts the run), the next run builds its own."""
    seen: list[tuple[ArtifactStore, ArtifactStore]] = []

    @dg.asset(io_manager_key="mem")
    def two_looks(artifact_store: ArtifactStoreResource) -> None:
        seen.append((artifact_store.store(), artifact_store.store()))

    resources = {"artifact_store": ArtifactStoreResource(root=str(tmp_path)), "mem": dg.mem_io_manager}
    for _ in range(2):
        assert dg.materialize([two_looks], instance=instance, resources=resources).success
    (first, again), (second, _) = seen
    assert first is again and second is not first and first.root == second.root == tmp_path


def test_a_forked_process_builds_its_own_store(tmp_path):
    """A child must not use the parent's store object (on object storage it holds an open client)."""
    resource = ArtifactStoreResource(root=str(tmp_path))
    parent = resource.store()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child reports, then leaves without running pytest's exit handlers
        try:
            own = resource.store()
            os.write(write, b"own" if own is not parent and resource.store() is own else b"shared")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 16)
    os.waitpid(child, 0)
    assert answer == b"own" and resource.store() is parent


def test_move_latest_points_latest_at_a_stored_version_and_logs_the_move(tmp_path):
    store = ArtifactStore(tmp_path / "store")
    store.save("thing", {"n": 1}, type="thing")
    store.save("thing", {"n": 2}, type="thing", run_id="run-1")
    assert store.aliases("thing")["latest"] == 1
    move = store.move_latest("thing:v0", reason="reused by the run cache", actor="dagster run r2", run_id="r2")
    assert (move.alias, move.from_version, move.to_version) == ("latest", 1, 0)
    assert (move.reason, move.actor, move.run_id) == ("reused by the run cache", "dagster run r2", "r2")
    assert store.alias_log("thing")[-1] == move and store.get("thing:latest").ref == "thing:v0"
    assert store.move_latest("thing:v0") is None  # already there: nothing logged
    assert store.alias_log("thing")[-1] == move
    with pytest.raises(ArtifactNotFoundError):
        store.move_latest("thing:v7")
    with pytest.raises(ArtifactNotFoundError):
        store.move_latest("other:v0")
    assert store.names() == ["thing"]


def test_a_run_cache_hit_moves_latest_back_to_the_reused_version(instance, store, no_mirror):
    """The README's promise: a re-run with nothing changed reuses every version and moves
    `latest` to it, as a write of the same bytes would."""
    split = ["raw_data", "clean_sample", "trainval_data", "test_data"]
    materialize(instance, selection=split)
    seven = materialized(materialize(instance, run_config(split_listings={"random_seed": 7}), selection=split))
    assert seven["trainval_data"]["artifact"] == "trainval_data:v1"
    assert store.get("trainval_data:latest").ref == "trainval_data:v1"
    result = materialize(instance, selection=split)
    again = materialized(result)
    for name in ("trainval_data", "test_data"):
        assert again[name]["artifact"] == f"{name}:v0" and again[name]["reused_from_run"] != "unknown"
        assert store.get(f"{name}:latest").ref == f"{name}:v0"
        assert "latest" in again[name]["aliases_at_materialization"]
        [*_, move] = store.alias_log(name)
        assert (move.alias, move.from_version, move.to_version, move.run_id) == ("latest", 1, 0, result.run_id)
        assert again[name]["reused_from_run"] in move.reason
    # raw_data and clean_sample were reused by every run, and latest stayed on them: nothing logged
    assert [m.to_version for m in store.alias_log("clean_sample") if m.alias == "latest"] == [0]


@pytest.mark.slow
def test_stored_values_load_outside_a_run(instance):
    """Notebooks and scripts use Dagster's asset value loader; it goes through the same IO manager."""
    from rental_pipeline.definitions import defs

    materialize(instance)
    with defs.get_asset_value_loader(instance=instance) as loader:
        clean = loader.load_asset_value("clean_sample")
    assert len(clean) == open_store().get("clean_sample:v0").metadata["facts"]["dagster/row_count"]


def test_an_io_manager_asked_for_wandb_without_a_tracker_says_so(tmp_path):
    """The trackers are the code location's choice (definitions.py): an IO manager built by hand in
    a process that never loads it mirrors nothing, and says so rather than staying silent."""
    import subprocess
    import sys

    script = """
import sys
import dagster as dg
from rental_pipeline.io_manager import ArtifactIOManager, ArtifactStoreResource

@dg.asset
def listings_count() -> dict:
    return {"listings": 3}

assert "rental_pipeline.definitions" not in sys.modules
io_manager = ArtifactIOManager(artifact_store=ArtifactStoreResource(root=sys.argv[1]), wandb_mode="offline")
result = dg.materialize([listings_count], resources={"io_manager": io_manager})
assert result.success
"""
    wandb_dir = tmp_path / "wandb"
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster"), "WANDB_MODE": "offline"}
    env.update({key: str(wandb_dir) for key in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR")})
    (tmp_path / "dagster").mkdir()
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "store")], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "W&B settings are given but no tracker is attached" in done.stderr
    assert not list(wandb_dir.rglob("*.wandb"))  # no offline W&B run was written
