"""One version identity across Dagster and the store: pinned checks, data and code versions that
Dagster's own staleness reads, and the run cache that skips unchanged work."""

from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest

from rental_pipeline.checks import all_checks
from rental_pipeline.definitions import all_assets, checks_job, default_resources, defs
from rental_pipeline.io_manager import FORCE_TAG, REUSED_FROM_KEY, ArtifactStoreResource
from rental_pipeline.run_cache import RUN_CACHE_FLAG, cache_key
from rental_pipeline.store import FAILED_CHECKS_FLAG, ArtifactStore
from rental_pipeline_tests.conftest import materialize, materialized, only, run_config

ASSETS = (
    "raw_data", "clean_sample", "trainval_data", "test_data", "inference_pipeline", "model_evaluation",
    "batch_predictions", "sweep_leaderboard",
)


def store() -> ArtifactStore:
    return ArtifactStoreResource().store()


def versions() -> dict[str, list[int]]:
    return {name: store().versions(name) for name in store().names()}


def wandb_runs(state: Path) -> set[str]:
    return {p.name for p in (state / "wandb").rglob("offline-run-*") if p.is_dir()}


def staleness(instance: dg.DagsterInstance, graph: Any = None) -> dict[str, StaleStatus]:
    resolver = CachingStaleStatusResolver(
        instance, graph or defs.resolve_asset_graph(), LoadingContextForTest(instance)
    )
    return {name: resolver.get_status(dg.AssetKey(name)) for name in ASSETS}


def stale(instance: dg.DagsterInstance, graph: Any = None) -> set[str]:
    return {name for name, status in staleness(instance, graph).items() if status == StaleStatus.STALE}


def reused_from(result: dg.ExecuteInProcessResult) -> dict[str, str | None]:
    return {name: meta.get(REUSED_FROM_KEY) for name, meta in materialized(result).items()}


# -- data and code versions ------------------------------------------------------------------


@pytest.mark.slow
def test_every_output_reports_its_store_digest_as_data_version_and_its_code_version(instance):
    result = materialize(instance)
    for event in result.get_asset_materialization_events():
        name = event.asset_key.to_user_string()
        version = store().get(str(event.materialization.metadata["artifact"].value))
        assert event.materialization.tags["dagster/data_version"] == version.digest, name
        code_version = defs.resolve_asset_graph().get(event.asset_key).code_version
        assert code_version and event.materialization.tags["dagster/code_version"] == code_version
        assert version.code_version == code_version, name  # the manifest says which code made it
        git = version.metadata.get("git")
        assert git is None or (len(git["commit"]) == 40 and isinstance(git["dirty"], bool))
    assert stale(instance) == set()
    assert all(status == StaleStatus.FRESH for status in staleness(instance).values())


@pytest.mark.slow
def test_a_new_upstream_version_marks_exactly_its_downstream_unsynced(instance):
    materialize(instance)
    changed = run_config(clean_sample={"max_price": 300})
    assert materialize(instance, changed, selection=["clean_sample"]).success
    # Dagster marks the direct downstream "upstream data changed"; "materialize unsynced" picks them.
    assert stale(instance) == {"trainval_data", "test_data"}
    resolver = CachingStaleStatusResolver(instance, defs.resolve_asset_graph(), LoadingContextForTest(instance))
    causes = resolver.get_stale_causes(dg.AssetKey("trainval_data"))
    assert [(c.category.value, c.dependency.asset_key.to_user_string()) for c in causes] == [("DATA", "clean_sample")]
    # Re-materializing them brings the graph back in sync: the model is recomputed on the new split.
    assert materialize(instance, changed).success
    assert stale(instance) == set()


@pytest.mark.slow
def test_a_code_version_change_marks_that_asset_code_changed(instance):
    materialize(instance)
    changed = [
        asset.map_asset_specs(lambda spec: spec.replace_attributes(code_version="edited"))
        if "inference_pipeline" in {k.to_user_string() for k in asset.keys} else asset
        for asset in all_assets
    ]
    graph = dg.Definitions(assets=changed, asset_checks=all_checks, resources=default_resources()).resolve_asset_graph()
    assert stale(instance, graph) == {"inference_pipeline"}
    resolver = CachingStaleStatusResolver(instance, graph, LoadingContextForTest(instance))
    causes = resolver.get_stale_causes(dg.AssetKey("inference_pipeline"))
    assert [cause.category.value for cause in causes] == ["CODE"]


# -- the run cache ---------------------------------------------------------------------------


@pytest.mark.slow
def test_nothing_changed_reuses_every_version_without_computing_or_mirroring(instance, isolated_state):
    first = materialize(instance)
    before, mirrored = versions(), wandb_runs(isolated_state)
    again = materialize(instance)
    assert again.success
    assert reused_from(again) == {name: first.run_id for name in ASSETS}
    assert versions() == before and wandb_runs(isolated_state) == mirrored
    # The reused materializations still show what the run that made them recorded.
    assert materialized(again)["inference_pipeline"]["val_mae"] == materialized(first)["inference_pipeline"]["val_mae"]
    assert materialized(again)["model_evaluation"]["promotion"].endswith("is already prod")
    logs = [e.message for e in instance.all_logs(again.run_id) if "Reused artifact" in (e.message or "")]
    assert len(logs) == len(ASSETS)
    assert stale(instance) == set()


@pytest.mark.slow
def test_a_model_config_change_recomputes_only_the_model_and_its_evaluation(instance):
    first = materialize(instance)
    before = versions()
    changed = materialize(instance, run_config(training={"max_tfidf_features": 3}))
    reused = reused_from(changed)
    assert {name for name, run in reused.items() if run == first.run_id} == {
        "raw_data", "clean_sample", "trainval_data", "test_data", "sweep_leaderboard",
    } | ({"batch_predictions"} if not materialized(changed)["model_evaluation"]["promoted"] else set())
    assert reused["inference_pipeline"] is None and reused["model_evaluation"] is None
    assert versions()["inference_pipeline"] == before["inference_pipeline"] + [1]
    assert stale(instance) == set()


@pytest.mark.slow
def test_a_hit_decodes_no_input_and_a_rolled_back_prod_is_scored_again(instance):
    first = materialize(instance)
    other = materialize(instance, run_config(training={"max_tfidf_features": 3}))
    assert other.success
    store().set_alias("inference_pipeline:v1", "prod", reason="rollback drill", force=True)

    again = materialize(instance)
    reused = reused_from(again)
    assert reused["inference_pipeline"] == reused["model_evaluation"] == first.run_id
    skipped = [e.message for e in instance.all_logs(again.run_id) if "Not loading" in (e.message or "")]
    assert any("trainval_data:v0" in m for m in skipped) and any("inference_pipeline:v0" in m for m in skipped)
    evaluation = materialized(again)["model_evaluation"]
    # Promotion is decided again: prod is now v1, so v0 is compared with it on the real test split.
    assert evaluation["evaluated_model"] == "inference_pipeline:v0"
    assert evaluation["compared_with"] == "inference_pipeline:v1" and "inference_pipeline:v1" in evaluation["promotion"]
    assert evaluation["compared_rows"] == evaluation["test_rows"]


@pytest.mark.slow
def test_a_new_source_recomputes_everything(instance):
    materialize(instance)
    again = materialize(instance, run_config(raw={"seed": 8}))
    # Batch predictions price fixed listings with prod: they stay valid unless the new model became prod.
    promoted = materialized(again)["model_evaluation"]["promoted"]
    unchanged = set() if promoted else {"batch_predictions"}
    assert {name for name, run in reused_from(again).items() if run is not None} == unchanged
    assert {name for name, v in versions().items() if len(v) == 2} == set(ASSETS) - unchanged


def test_different_config_or_seed_never_share_a_cache_entry():
    base = cache_key("clean_sample", "c1", {"max_price": 350}, {"raw_data": "raw_data:v0"})
    assert base == cache_key("clean_sample", "c1", {"max_price": 350}, {"raw_data": "raw_data:v0"})
    assert len({
        base,
        cache_key("clean_sample", "c1", {"max_price": 351}, {"raw_data": "raw_data:v0"}),
        cache_key("clean_sample", "c2", {"max_price": 350}, {"raw_data": "raw_data:v0"}),
        cache_key("clean_sample", "c1", {"max_price": 350}, {"raw_data": "raw_data:v1"}),
        cache_key("trainval_data", "c1", {"max_price": 350}, {"raw_data": "raw_data:v0"}),
        cache_key("raw_data", "c1", {"rows": 10, "seed": 1}, {}),
        cache_key("raw_data", "c1", {"rows": 10, "seed": 2}, {}),
    }) == 7
    # a version made without charts is keyed apart; with charts the key is the one it always was
    assert cache_key("clean_sample", "c1", {"max_price": 350}, {"raw_data": "raw_data:v0"}, charts=True) == base
    assert cache_key("clean_sample", "c1", {"max_price": 350}, {"raw_data": "raw_data:v0"}, charts=False) != base


@pytest.mark.slow
def test_seed_change_of_the_split_recomputes_the_split_and_below(instance):
    first = materialize(instance)
    again = materialize(instance, run_config(split_listings={"random_seed": 1}))
    reused = reused_from(again)
    assert reused["raw_data"] == reused["clean_sample"] == first.run_id
    assert reused["trainval_data"] is None and reused["test_data"] is None and reused["inference_pipeline"] is None


@pytest.mark.slow
def test_force_recomputes_and_finds_the_same_versions(instance):
    materialize(instance)
    before = versions()
    forced = dg.materialize(
        [*all_assets, *all_checks],
        instance=instance,
        run_config=run_config(),
        resources=default_resources(),
        tags={FORCE_TAG: "true"},
    )
    assert all(run is None for run in reused_from(forced).values())
    assert all(meta["artifact_version_new"] is False for meta in materialized(forced).values())
    assert versions() == before


@pytest.mark.slow
def test_a_run_drawing_charts_never_reuses_a_version_made_without_them(instance, monkeypatch):
    """A reused version shows the metadata of the run that made it: one made with charts off
    would leave the asset page without charts for every later run."""
    selection = ["raw_data", "clean_sample"]
    config = run_config()
    headless = materialize(instance, config, selection)  # the tests run with RENTAL_PIPELINE_PLOTS=off
    assert "price_distribution_plot" not in materialized(headless)["clean_sample"]
    monkeypatch.setenv("RENTAL_PIPELINE_PLOTS", "on")
    drawn = materialize(instance, config, selection)
    assert reused_from(drawn) == {"raw_data": None, "clean_sample": None}
    assert "price_distribution_plot" in materialized(drawn)["clean_sample"]
    assert materialized(drawn)["clean_sample"]["artifact"] == materialized(headless)["clean_sample"]["artifact"]
    again = materialize(instance, config, selection)
    assert reused_from(again)["clean_sample"] == drawn.run_id
    assert "price_distribution_plot" in materialized(again)["clean_sample"]


@pytest.mark.slow
def test_a_charted_run_computes_what_another_instance_made(instance, monkeypatch):
    """Another machine's Dagster home (or a deleted run) made the stored version: its page cannot
    be shown again, so a run drawing charts computes (the same bytes, the same version) rather
    than showing a reused page without charts or tables."""
    selection = ["raw_data", "clean_sample"]
    monkeypatch.setenv("RENTAL_PIPELINE_PLOTS", "on")
    first = materialize(instance, run_config(), selection)
    with dg.DagsterInstance.ephemeral() as elsewhere:
        there = materialize(elsewhere, run_config(), selection)
    assert reused_from(there) == {"raw_data": None, "clean_sample": None}
    assert "price_distribution_plot" in materialized(there)["clean_sample"]
    assert materialized(there)["clean_sample"]["artifact"] == materialized(first)["clean_sample"]["artifact"]
    # the run that made it is in this instance: reused, page and charts included
    again = materialize(instance, run_config(), selection)
    assert reused_from(again)["clean_sample"] is not None
    assert "price_distribution_plot" in materialized(again)["clean_sample"]


@pytest.mark.slow
def test_a_pin_holds_when_the_run_also_materializes_the_pinned_asset(instance):
    """A pin is chosen on purpose: the version this run makes of the pinned asset is stored, but
    every reader of the run reads the pinned one."""
    from rental_pipeline.io_manager import artifact_io_manager

    first = materialized(materialize(instance, run_config(), ["raw_data", "clean_sample"]))
    assert first["clean_sample"]["artifact"] == "clean_sample:v0"
    config = only(run_config(raw={"rows": 1_800}), "raw_data", "clean_sample_checks")
    result = dg.materialize(
        [*all_assets, *all_checks],
        instance=instance,
        selection=["raw_data", "clean_sample", "trainval_data", "test_data"],
        run_config=config,
        resources={
            "artifact_store": ArtifactStoreResource(),
            "io_manager": artifact_io_manager.configured({"pins": {"clean_sample": "v0"}}),
        },
    )
    made = materialized(result)
    assert made["clean_sample"]["artifact"] == "clean_sample:v1"  # stored as usual
    assert made["trainval_data"]["artifact_inputs"] == made["test_data"]["artifact_inputs"] == "clean_sample:v0"


@pytest.mark.slow
def test_a_reused_version_whose_checks_failed_still_blocks_downstream(instance):
    small = {"ops": {"raw_data": {"config": {"rows": 1_500, "seed": 7}},
                     "clean_sample_checks": {"config": {"min_rows": 100}}}}
    assert materialize(instance, small, selection=["raw_data", "clean_sample"]).success
    strict = {"ops": {**small["ops"], "clean_sample_checks": {"config": {"min_rows": 5_000}}}}
    failed = materialize(instance, strict, selection=["raw_data", "clean_sample", "trainval_data"],
                         raise_on_error=False)
    assert not failed.success
    assert reused_from(failed)["clean_sample"] is not None  # the stored version was reused ...
    assert "split_listings" not in {e.step_key for e in failed.all_events if e.event_type_value == "STEP_START"}
    assert FAILED_CHECKS_FLAG in store().flags("clean_sample:v0")  # ... and its failure recorded again


# -- one resolver ----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_pinned_check_judges_and_flags_only_the_pinned_version(instance):
    small = {"ops": {"raw_data": {"config": {"rows": 600, "seed": 7}},
                     "clean_sample_checks": {"config": {"min_rows": 100}}}}
    assert materialize(instance, small, selection=["raw_data", "clean_sample"]).success
    bigger = {"ops": {**small["ops"], "raw_data": {"config": {"rows": 1_500, "seed": 7}}}}
    assert materialize(instance, bigger, selection=["raw_data", "clean_sample"]).success
    assert store().versions("clean_sample") == [0, 1]

    job = dg.Definitions(
        assets=all_assets, asset_checks=all_checks, jobs=[checks_job], resources=default_resources()
    ).resolve_job_def("checks_job")
    result = job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config={
            "ops": {"clean_sample_checks": {"config": {"min_rows": 1_000}}},
            "resources": {"io_manager": {"config": {"pins": {"clean_sample": "v0"}}}},
        },
    )
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    row_count = checks[("clean_sample", "row_count")]
    assert not row_count.passed
    assert row_count.metadata["checked_version"].value == "clean_sample:v0"
    assert {e.metadata["checked_version"].value for (asset, _), e in checks.items() if asset == "clean_sample"} == {
        "clean_sample:v0"
    }
    assert "row_count" in store().flags("clean_sample:v0")[FAILED_CHECKS_FLAG]
    assert FAILED_CHECKS_FLAG not in store().flags("clean_sample:v1")
    # The good version stays usable downstream.
    assert materialize(instance, {}, selection=["trainval_data"]).success
    assert store().get("trainval_data:latest").inputs == ("clean_sample:v1",)


@pytest.mark.slow
def test_a_run_reads_its_own_upstream_even_when_another_run_moved_it(instance):
    """A run stores raw_data:v0; before its clean_sample step, another writer stores v1 and a
    later materialization records it. The run still cleans its own v0."""
    from rental_pipeline.synthetic import generate_listings

    config = run_config()

    @dg.asset(name="intruder", deps=["raw_data"])
    def intruder(context: dg.AssetExecutionContext) -> None:
        other = generate_listings(rows=900, seed=99)
        ref = store().save("raw_data", other, type="raw_data").version.ref
        context.instance.report_runless_asset_event(
            dg.AssetMaterialization("raw_data", metadata={"artifact": ref})
        )

    intruder_first = [intruder, *all_assets]
    result = dg.materialize(
        [*intruder_first, *all_checks],
        instance=instance,
        selection=["raw_data", "intruder", "clean_sample"],
        run_config={"ops": {k: v for k, v in config["ops"].items() if k in ("raw_data", "clean_sample_checks")}},
        resources=default_resources(),
    )
    assert result.success
    assert store().get("raw_data:latest").ref == "raw_data:v1"
    assert instance.get_latest_materialization_event(dg.AssetKey("raw_data")).asset_materialization.metadata[
        "artifact"
    ].value == "raw_data:v1"
    assert store().get("clean_sample:v0").inputs == ("raw_data:v0",)


@pytest.mark.slow
def test_the_cache_key_is_recorded_on_the_version_it_made(instance):
    result = materialize(instance, selection=["raw_data"], config=run_config())
    (event,) = result.get_asset_materialization_events()
    entries = store().flags("raw_data:v0")[RUN_CACHE_FLAG]
    assert list(entries.values()) == [{"run_id": result.run_id}]


@pytest.mark.slow
def test_a_process_per_step_reads_the_versions_its_own_run_recorded():
    """With the multiprocess executor no step shares the resolver's memory: each reads the run's
    own records. Another writer moves `latest` and the latest materialization between runs."""
    from rental_pipeline_tests.multiprocess_job import SELECTION, multiprocess_training_job

    config = {"ops": {k: v for k, v in run_config()["ops"].items() if k in (
        "raw_data", "clean_sample_checks")}}
    config["ops"]["raw_data"]["config"]["seed"] = 11
    with dg.DagsterInstance.get() as instance:
        job = dg.reconstructable(multiprocess_training_job)
        with dg.execute_job(job, instance=instance, run_config=config) as first:
            assert first.success
        # Someone stores another raw_data and clean_sample behind Dagster's back.
        from rental_pipeline.synthetic import generate_listings

        store().save("raw_data", generate_listings(rows=900, seed=99), type="raw_data")
        with dg.execute_job(job, instance=instance, run_config=config) as again:
            assert again.success
        for result in (first, again):
            refs = {}
            for event in instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
                m = event.dagster_event.step_materialization_data.materialization
                refs[m.asset_key.to_user_string()] = (str(m.metadata["artifact"].value), m.metadata)
            assert set(refs) == set(SELECTION)
            assert store().get(refs["clean_sample"][0]).inputs == (refs["raw_data"][0],)
            assert store().get(refs["trainval_data"][0]).inputs == (refs["clean_sample"][0],)
            for event in instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
                evaluation = event.dagster_event.event_specific_data
                checked = evaluation.metadata.get("checked_version")
                if checked is not None:
                    assert checked.value == refs[evaluation.asset_key.to_user_string()][0]
        # The second run re-read its source (synthetic: from config), found the same bytes, and
        # reused every version, never the intruder's raw_data:v1.
        second = {
            e.dagster_event.step_materialization_data.materialization.asset_key.to_user_string():
            e.dagster_event.step_materialization_data.materialization.metadata
            for e in instance.all_logs(again.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        }
        assert second["raw_data"]["artifact"].value == "raw_data:v0"
        assert all(REUSED_FROM_KEY in metadata for metadata in second.values())
