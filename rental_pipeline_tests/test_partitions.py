"""Weekly partitions through the real graph: a week per partition, stored and checked on its own."""

from typing import Any

import dagster as dg
import pytest

from rental_pipeline_tests.conftest import artifact_store

pytestmark = pytest.mark.usefixtures("no_mirror")

WEEKS = ["2024-03-04", "2024-03-11", "2024-03-18"]


def week_config(**raw: Any) -> dict:
    return {
        "ops": {
            "weekly_raw_data": {"config": {"rows": 1_500, "seed": 7, **raw}},
            "weekly_clean_sample_checks": {"config": {"min_rows": 100}},
        }
    }


def run_week(instance: dg.DagsterInstance, week: str, config: dict | None = None) -> dg.ExecuteInProcessResult:
    from rental_pipeline.definitions import defs

    job = defs.resolve_job_def("weekly_job")
    return job.execute_in_process(
        instance=instance, partition_key=week, run_config=config or week_config(), raise_on_error=False
    )


def reused(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    """Of the week's two assets, which the run cache answered."""
    return {
        e.asset_key.to_user_string(): "reused_from_run" in e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() in ("weekly_raw_data", "weekly_clean_sample")
    }


@pytest.mark.slow
def test_each_week_is_a_partition_and_an_artifact_of_its_own_and_a_done_week_is_reused(instance):
    for week in WEEKS[:2]:
        assert run_week(instance, week).success
    store = artifact_store()
    expected = {f"{asset}.{week}" for asset in ("raw_data", "clean_sample") for week in WEEKS[:2]}
    assert {name for name in store.names() if "." in name} == expected
    clean = store.get(f"clean_sample.{WEEKS[1]}:latest")
    assert clean.metadata["partition"] == WEEKS[1]  # every version records its week
    assert clean.inputs == (f"raw_data.{WEEKS[1]}:v0",)  # and is made from that week's drop, not another's
    assert instance.get_materialized_partitions(dg.AssetKey("weekly_clean_sample")) == set(WEEKS[:2])
    # the catalog holds each week's checks; the plain assets' history is untouched
    evaluation = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("weekly_clean_sample"), "row_count")]
    )
    assert evaluation
    assert "raw_data" not in store.names()
    assert instance.get_latest_materialization_event(dg.AssetKey("raw_data")) is None

    again = run_week(instance, WEEKS[0])  # a week already done: the run cache answers, for that week only
    assert again.success and reused(again) == {"weekly_raw_data": True, "weekly_clean_sample": True}
    assert store.get(f"raw_data.{WEEKS[0]}:latest").version == 0
    third = run_week(instance, WEEKS[2])  # a new week is never answered by another week's cache
    assert third.success and reused(third) == {"weekly_raw_data": False, "weekly_clean_sample": False}


@pytest.mark.slow
def test_a_drifting_week_fails_its_checks_and_is_refused_while_the_others_proceed(instance):
    assert run_week(instance, WEEKS[0]).success  # the first passing week becomes the reference
    bad = run_week(instance, WEEKS[1], week_config(drift=True))
    assert not bad.success
    failed = {(e.asset_key.to_user_string(), e.check_name) for e in bad.get_asset_check_evaluations() if not e.passed}
    assert ("weekly_clean_sample", "borough_drift") in failed
    store = artifact_store()
    flagged = store.get(f"clean_sample.{WEEKS[1]}:latest")
    assert "borough_drift" in flagged.flags.get("failed_checks", {})
    assert store.get(f"clean_sample.{WEEKS[0]}:reference").version == 0  # the reference did not move
    assert run_week(instance, WEEKS[2]).success  # the next week proceeds, judged against the same reference
    assert not store.get(f"clean_sample.{WEEKS[2]}:latest").flags.get("failed_checks")
    status = instance.get_materialized_partitions(dg.AssetKey("weekly_clean_sample"))
    assert status == set(WEEKS)


@pytest.mark.slow
def test_a_late_corrected_drop_makes_a_new_version_of_its_own_week(instance, tmp_path):
    from rental_pipeline.synthetic_weeks import generate_week

    for week in WEEKS[:2]:
        assert run_week(instance, week).success
    corrected = generate_week(WEEKS[0], rows=1_500, seed=7).iloc[:-10]  # the provider fixed ten rows away
    path = tmp_path / f"listings_{WEEKS[0]}.csv"
    corrected.to_csv(path, index=False)
    assert run_week(instance, WEEKS[0], week_config(source=str(path))).success
    store = artifact_store()
    fixed = store.get(f"raw_data.{WEEKS[0]}:latest")
    assert fixed.version == 1 and fixed.metadata["partition"] == WEEKS[0]
    assert store.get(f"clean_sample.{WEEKS[0]}:latest").inputs == (f"raw_data.{WEEKS[0]}:v1",)
    assert [v.version for v in store.history(f"raw_data.{WEEKS[1]}")] == [0]  # the newer week is untouched


FAST_FOREST = {"n_estimators": 10, "max_depth": 8, "n_jobs": 1, "oob_score": False}


def train_week(instance: dg.DagsterInstance, week: str, weeks: int, **raw: Any) -> dg.ExecuteInProcessResult:
    """`weekly_training_job` for ``week``: its drop, then a model on the last ``weeks`` weeks."""
    from rental_pipeline.definitions import defs

    config = week_config(**raw)
    config["ops"]["split_listings"] = {"config": {"weeks": weeks}}
    config["ops"]["inference_pipeline"] = {"config": {"model": "random_forest", "random_forest": FAST_FOREST}}
    return defs.resolve_job_def("weekly_training_job").execute_in_process(
        instance=instance, partition_key=week, run_config=config, raise_on_error=False
    )


@pytest.mark.slow
def test_training_on_four_weeks_counts_each_listing_once_and_is_scored_on_the_newest_weeks_unseen_listings(instance):
    from rental_pipeline.split import split_listings

    for week in WEEKS:
        assert run_week(instance, week).success
    newest = "2024-03-25"
    assert train_week(instance, newest, weeks=4).success
    store = artifact_store()
    trainval, test = store.get("trainval_data:latest"), store.get("test_data:latest")
    weeks = [*WEEKS, newest]
    assert trainval.inputs == tuple(f"clean_sample.{week}:v0" for week in weeks)  # the exact week versions
    assert trainval.metadata["facts"]["window_weeks"] == ", ".join(weeks)
    rows, held_out = store.load(trainval.ref), store.load(test.ref)
    assert rows["id"].is_unique  # a listing seen in four weeks counts once
    assert not rows["id"].isin(held_out["id"]).any()  # never trained on a listing it is scored on
    clean = store.load(f"clean_sample.{newest}:v0")
    newest_trainval, newest_test = split_listings(clean)
    assert held_out.equals(newest_test)  # the newest week's own test side, as a single week would have
    assert rows["id"].isin(newest_trainval["id"]).sum() == len(newest_trainval)
    older = set().union(*(store.load(f"clean_sample.{week}:v0")["id"] for week in WEEKS))
    assert len(rows) == len(newest_trainval) + len(older - set(clean["id"]))
    evaluation = store.get("model_evaluation:latest")
    assert store.get("inference_pipeline:latest").inputs == (trainval.ref,)
    assert test.ref in evaluation.inputs


@pytest.mark.slow
def test_a_bad_week_is_never_trained_on(instance):
    assert run_week(instance, WEEKS[0]).success
    assert not train_week(instance, WEEKS[1], weeks=2, drift=True).success  # its checks stop the run
    store = artifact_store()
    assert "trainval_data" not in store.names() and "inference_pipeline" not in store.names()
    assert train_week(instance, WEEKS[2], weeks=3).success  # the window goes on without the bad week
    trainval = store.get("trainval_data:latest")
    assert trainval.inputs == (f"clean_sample.{WEEKS[0]}:v0", f"clean_sample.{WEEKS[2]}:v0")
    prod = store.get("inference_pipeline:prod")
    assert prod.inputs == (trainval.ref,)


@pytest.mark.slow
def test_a_run_that_names_no_week_reads_the_plain_graph_and_a_window_needs_a_week(instance):
    from rental_pipeline_tests.conftest import data_config, materialize_checked

    assert materialize_checked(instance, data_config(), selection=["raw_data", "clean_sample", "trainval_data"]).success
    assert artifact_store().get("trainval_data:latest").inputs == ("clean_sample:v0",)
    config = data_config()
    config["ops"]["split_listings"] = {"config": {"weeks": 4}}
    result = materialize_checked(instance, config, selection=["trainval_data"])
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "weeks: 4 trains on a window of weeks: name the newest" in failure.step_failure_data.error.message + str(
        failure.step_failure_data.user_failure_data.description if failure.step_failure_data.user_failure_data else ""
    )


@pytest.mark.slow
def test_a_weeks_wandb_artifact_is_named_after_its_week(instance, monkeypatch):
    """The dagster-wandb convention for partitioned assets: one W&B artifact per partition."""
    import os
    from pathlib import Path

    from rental_pipeline_tests.tracking.wandb_standin import offline_runs

    monkeypatch.setenv("WANDB_MODE", "offline")
    assert run_week(instance, WEEKS[0]).success
    runs = offline_runs(Path(os.environ["WANDB_DIR"])).values()
    logged = {(a.name, a.type) for run in runs for a in run.artifacts if a.type != "run_table"}
    assert {(f"raw_data.{WEEKS[0]}", "raw_data"), (f"clean_sample.{WEEKS[0]}", "clean_sample")} <= logged
    jobs = {run.job_type for run in runs}
    assert f"clean_sample.{WEEKS[0]}" in jobs


def retrain_tick(instance: dg.DagsterInstance) -> dg.SensorResult:
    """One evaluation of the code location's `retrain_on_new_week` sensor, as the daemon makes it."""
    from rental_pipeline.definitions import defs

    sensor = defs.resolve_sensor_def("retrain_on_new_week")
    return sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs))


def launch(instance: dg.DagsterInstance, request: dg.RunRequest, check: bool = True) -> dg.ExecuteInProcessResult:
    """The run a request asks for, as the daemon would start it (a fast forest for the model)."""
    from rental_pipeline.definitions import defs

    job = defs.resolve_job_def(request.job_name or "weekly_training_job").get_subset(
        asset_selection=set(request.asset_selection)
    )
    config = {"ops": {"inference_pipeline": {"config": {"model": "random_forest", "random_forest": FAST_FOREST}}}}
    return job.execute_in_process(instance=instance, tags=request.tags, run_config=config, raise_on_error=check)


@pytest.mark.slow
def test_a_week_landing_without_training_is_trained_on_and_a_bad_week_never_is(instance):
    first = retrain_tick(instance)
    assert not first.run_requests and "nothing to train on" in first.skip_message

    assert run_week(instance, WEEKS[0]).success  # a week lands by a run that does not train (a backfill)
    (request,) = retrain_tick(instance).run_requests
    assert request.tags["dagster/partition"] == WEEKS[0]  # the run names the week that landed: it trains on it
    assert request.run_key == f"retrain:clean_sample.{WEEKS[0]}:v0"  # so Dagster starts it once
    assert set(request.asset_selection) == {
        dg.AssetKey(name) for name in ("trainval_data", "test_data", "inference_pipeline", "model_evaluation")
    }
    assert launch(instance, request).success
    store = artifact_store()
    assert store.get("trainval_data:latest").inputs == (f"clean_sample.{WEEKS[0]}:v0",)
    assert [v.version for v in store.history(f"raw_data.{WEEKS[0]}")] == [0]  # the drop is not read again

    again = retrain_tick(instance)
    assert (
        not again.run_requests and f"inference_pipeline:v0 trained on clean_sample.{WEEKS[0]}:v0" in again.skip_message
    )

    assert not run_week(instance, WEEKS[1], week_config(drift=True)).success  # a week its checks stop
    bad = retrain_tick(instance)
    assert not bad.run_requests  # never the bad week; the week before it was trained on already
    assert f"trained on clean_sample.{WEEKS[0]}:v0" in bad.skip_message

    assert train_week(instance, WEEKS[2], weeks=1).success  # the landing sensor's run trains on its week itself
    trained = retrain_tick(instance)
    assert not trained.run_requests and f"trained on clean_sample.{WEEKS[2]}:v0" in trained.skip_message


@pytest.mark.slow
def test_a_week_whose_checks_were_not_judged_is_never_trained_on(instance, tmp_path):
    """A week's run killed after its drop was stored but before its checks ran (or still running
    them) leaves a version without a failure flag: it must not count as passed."""
    from rental_pipeline.definitions import defs

    assert run_week(instance, WEEKS[0]).success
    (request,) = retrain_tick(instance).run_requests
    assert launch(instance, request).success
    # The drifting week's assets, without their checks: what a run killed before its checks leaves.
    unchecked = defs.resolve_job_def("weekly_job").get_subset(
        asset_selection={dg.AssetKey("weekly_raw_data"), dg.AssetKey("weekly_clean_sample")},
        asset_check_selection=set(),
    )
    raw_only = {"ops": {"weekly_raw_data": week_config(drift=True)["ops"]["weekly_raw_data"]}}
    assert unchecked.execute_in_process(instance=instance, partition_key=WEEKS[1], run_config=raw_only).success
    store = artifact_store()
    assert not store.get(f"clean_sample.{WEEKS[1]}:latest").flags.get("failed_checks")  # no verdict either way
    tick = retrain_tick(instance)
    assert not tick.run_requests  # the unjudged week is not the newest trainable one
    assert train_week(instance, WEEKS[2], weeks=2).success  # nor is it part of a window
    assert store.get("trainval_data:latest").inputs == (f"clean_sample.{WEEKS[2]}:v0",)
    # and a training-only run naming it is refused, saying why
    named = launch_week(instance, WEEKS[1])
    assert not named.success
    failure = next(e for e in named.all_events if e.is_step_failure).step_failure_data.error.message
    assert "checks have not been judged" in failure


def launch_week(instance: dg.DagsterInstance, week: str) -> dg.ExecuteInProcessResult:
    """The training assets alone, for ``week``, as `retrain_on_new_week` would ask."""
    from rental_pipeline.automation import RETRAIN_TARGETS

    targets = [dg.AssetKey(name) for name in RETRAIN_TARGETS]
    return launch(instance, dg.RunRequest(asset_selection=targets, tags={"dagster/partition": week}), check=False)


@pytest.mark.slow
def test_a_late_drop_for_a_past_week_does_not_take_prod_back_in_time(instance, tmp_path):
    from rental_pipeline.synthetic_weeks import generate_week

    assert train_week(instance, WEEKS[2], weeks=1).success
    store = artifact_store()
    prod = store.get("inference_pipeline:prod")
    late = generate_week(WEEKS[0], rows=1_500, seed=8)  # the landing sensor's run for listings_<old week>.csv
    path = tmp_path / f"listings_{WEEKS[0]}.csv"
    late.to_csv(path, index=False)
    assert train_week(instance, WEEKS[0], weeks=1, source=str(path)).success
    challenger = store.get("inference_pipeline:latest")
    assert challenger.ref != prod.ref
    assert store.get("inference_pipeline:prod").ref == prod.ref  # prod stays on the newer week
    decision = challenger.flags["promotion"]
    assert not decision["promoted"]
    assert f"older than prod {prod.ref}'s {WEEKS[2]}" in decision["outcome"]
    evaluation = instance.get_latest_materialization_event(dg.AssetKey("model_evaluation")).asset_materialization
    table = evaluation.metadata["champion_vs_challenger"].value
    roles = {row.data["model"]: row.data["role"] for row in table.records}
    assert "not readable" not in roles[prod.ref]  # the page says why it was not compared, truthfully


def judge_again(instance: dg.DagsterInstance, week: str, checks: set[str], **config: Any) -> dg.ExecuteInProcessResult:
    """Some of a stored week's clean checks again, alone (as `dagster asset check --select` runs them)."""
    from rental_pipeline.definitions import defs

    keys = {dg.AssetCheckKey(dg.AssetKey("weekly_clean_sample"), name) for name in checks}
    job = defs.resolve_job_def("weekly_job").get_subset(asset_selection=set(), asset_check_selection=keys)
    run_config = {"ops": {"weekly_clean_sample_checks": {"config": {"min_rows": 100, **config}}}}
    return job.execute_in_process(instance=instance, partition_key=week, run_config=run_config, raise_on_error=False)


@pytest.mark.slow
def test_a_week_is_trainable_only_while_every_latest_verdict_on_it_passed(instance):
    from rental_pipeline.weeks import trainable

    store = artifact_store()
    assert run_week(instance, WEEKS[0]).success
    clean = f"clean_sample.{WEEKS[0]}:v0"
    assert trainable(store.get(clean))
    # one check alone, failing now: the version is flagged, so no longer trainable
    assert not judge_again(instance, WEEKS[0], {"row_count"}, min_rows=100_000).success
    assert "row_count" in store.get(clean).flags["failed_checks"] and not trainable(store.get(clean))
    assert not retrain_tick(instance).run_requests
    # the verdict check alone does not wipe a failure it did not judge again
    assert judge_again(instance, WEEKS[0], {"borough_drift"}).success
    assert not trainable(store.get(clean))
    # judged again and passing, it is trainable again
    assert judge_again(instance, WEEKS[0], {"row_count"}).success
    assert trainable(store.get(clean))


@pytest.mark.slow
def test_a_verdict_that_never_came_leaves_the_week_untrusted(instance):
    """A week judged again is untrusted until the new verdict is in: a re-judge that dies on the
    way (here the reference's bytes are gone, a damaged store) leaves no verdict to train on."""
    from rental_pipeline.weeks import trainable

    store = artifact_store()
    for week in WEEKS[:2]:
        assert run_week(instance, week).success
    good = f"clean_sample.{WEEKS[1]}:v0"
    assert trainable(store.get(good))
    reference = store.get(f"clean_sample.{WEEKS[0]}:reference")
    damaged = [blob for entry in reference.files for blob in store.root.rglob(entry.sha256)]
    assert damaged
    for blob in damaged:
        blob.chmod(0o600)
        blob.write_bytes(b"not parquet")
    again = judge_again(instance, WEEKS[1], {"borough_drift", "row_count"})
    assert not again.success and not again.get_asset_check_evaluations()  # the step died, no verdict
    assert not trainable(store.get(good))
    requests = retrain_tick(instance).run_requests  # not that week, until it is judged again
    assert all(request.tags["dagster/partition"] != WEEKS[1] for request in requests)


@pytest.mark.slow
def test_retraining_never_names_a_week_older_than_prods_and_asks_again_when_no_model_came(instance):
    assert run_week(instance, WEEKS[0]).success
    assert train_week(instance, WEEKS[1], weeks=1).success  # prod trains on the newer week
    # A corrected drop of the newer week fails its checks: the newest trusted week is now the older one.
    assert not run_week(instance, WEEKS[1], week_config(drift=True, seed=9)).success
    tick = retrain_tick(instance)
    assert not tick.run_requests  # a model of 2024-03-04 could never replace prod, trained on 2024-03-11
    assert f"trained on {WEEKS[1]}, a newer week" in tick.skip_message

    # A week whose split was stored but whose model never came is asked for again.
    from rental_pipeline.definitions import defs

    assert run_week(instance, WEEKS[2]).success
    split_only = defs.resolve_job_def("weekly_training_job").get_subset(
        asset_selection={dg.AssetKey("trainval_data"), dg.AssetKey("test_data")}
    )
    assert split_only.execute_in_process(instance=instance, tags={"dagster/partition": WEEKS[2]}).success
    (request,) = retrain_tick(instance).run_requests
    assert request.tags["dagster/partition"] == WEEKS[2]
