"""The week-by-week view: plain functions on weeks, and the asset through the real graph."""

from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from rental_pipeline.week_view import Drop, ProdScore, Week, new_listings, prod_scores, week_plot, week_rows


def _week(week: str, ids: list[int], boroughs: list[str], **options) -> Week:
    clean = pd.DataFrame({"id": ids, "neighbourhood_group": boroughs, "price": [100] * len(ids)})
    return Week(week=week, version=f"clean_sample.{week}:v0", clean=clean, rows_in=len(ids) + 2, **options)


def test_each_week_says_its_rows_what_cleaning_dropped_its_drift_and_its_new_listings():
    reference = pd.DataFrame({"neighbourhood_group": ["Brooklyn", "Manhattan"] * 5})
    weeks = [
        _week("2024-03-04", [1, 2, 3, 4], ["Brooklyn", "Manhattan"] * 2, reference=reference, prod_changed=True),
        _week(
            "2024-03-11",
            [2, 3, 4, 5, 7],
            ["Brooklyn", "Manhattan", "Brooklyn", "Brooklyn", "Brooklyn"],
            reference=reference,
            prod_changed=False,
            failed_checks="borough_drift",
        ),
        _week("2024-03-25", [5, 6], ["Brooklyn", "Manhattan"], reference=None, prod_changed=False),  # a week missing
    ]
    drops = [Drop(week="2024-03-18", version="raw_data.2024-03-18:v0", rows_in=9, failed_checks="schema")]
    # a week is compared with the last week that passed its checks, never with a failed one
    assert set(new_listings(weeks)) == {"2024-03-11", "2024-03-25"}
    assert list(new_listings(weeks)["2024-03-11"]["id"]) == [5, 7]
    assert list(new_listings(weeks)["2024-03-25"]["id"]) == [5, 6]
    table = week_rows(weeks, {"2024-03-11": ProdScore(scored=1, mae=12.5)}, drops)
    assert list(table["week"]) == ["2024-03-04", "2024-03-11", "2024-03-18", "2024-03-25"]
    assert list(table["rows"][[0, 1, 3]]) == [4, 5, 2] and list(table["dropped"][[0, 1, 3]]) == [2, 2, 2]
    assert table["drift_bits"][0] == 0 and table["drift_bits"][1] > 0.1 and pd.isna(table["drift_bits"][3])
    assert pd.isna(table["new_listings"][0]) and table["new_listings"][1] == 2 and table["new_listings"][3] == 2
    assert list(table["new_since"][[1, 3]]) == ["2024-03-04", "2024-03-04"]
    assert table["new_unseen"][1] == 1 and table["prod_mae_new"][1] == 12.5
    assert list(table["prod_changed"]) == [True, False, False, False]
    assert table["failed_checks"][1] == "borough_drift"
    # the drop its raw checks stopped has a row of its own, with what it failed
    assert table["version"][2] == "raw_data.2024-03-18:v0" and table["failed_checks"][2] == "schema"
    assert table["rows_in"][2] == 9 and pd.isna(table["rows"][2]) and pd.isna(table["new_listings"][2])
    assert week_plot(table)[:8] == b"\x89PNG\r\n\x1a\n"


def test_prod_is_scored_only_on_new_listings_it_did_not_train_on():
    new = {
        "2024-03-11": pd.DataFrame({"id": [1, 2, 3], "price": [100.0, 200.0, 300.0]}),
        "2024-03-18": pd.DataFrame({"id": [4, 5], "price": [100.0, 100.0]}),
    }

    def predict(frame: pd.DataFrame) -> np.ndarray:
        return np.full(len(frame), 100.0)

    scores = prod_scores(new, frozenset({1, 4, 5}), predict)
    assert scores["2024-03-11"] == ProdScore(scored=2, mae=150.0)  # 2 and 3 only: 1 was trained on
    assert scores["2024-03-18"] == ProdScore(scored=0, mae=None)  # every new listing trained on: no in-sample MAE
    unknown = prod_scores(new, None, predict)  # what prod trained on cannot be told: nothing is scored
    assert set(unknown.values()) == {ProdScore(scored=None, mae=None)}


@pytest.mark.slow
@pytest.mark.usefixtures("no_mirror")
def test_the_view_shows_every_week_and_the_bad_one_stands_out(instance):
    from rental_pipeline.definitions import defs
    from rental_pipeline_tests.conftest import FAST_FOREST, artifact_store

    job = defs.resolve_job_def("weekly_training_job")
    weeks = ["2024-03-04", "2024-03-11", "2024-03-18"]
    for week in weeks:
        config = {
            "ops": {
                "weekly_raw_data": {"config": {"rows": 1_500, "seed": 7, "drift": week == weeks[1]}},
                "weekly_clean_sample_checks": {"config": {"min_rows": 100}},
                "inference_pipeline": {"config": {"model": "random_forest", "random_forest": FAST_FOREST}},
            }
        }
        job.execute_in_process(instance=instance, partition_key=week, run_config=config, raise_on_error=False)
    store = artifact_store()
    view = store.load("week_by_week:latest")
    assert list(view["week"]) == weeks
    assert view["drift_bits"][1] > 0.2 > view["drift_bits"][2]  # the drifting week stands out
    assert "borough_drift" in view["failed_checks"][1] and not view["failed_checks"][2]
    assert bool(view["prod_changed"][0])  # the first model became prod in the first week
    assert view["prod_mae_new"][2] > 0 and view["new_listings"][2] > 0
    assert set(store.get("week_by_week:latest").inputs) >= {f"clean_sample.{week}:v0" for week in weeks}


WEEKS = ["2024-03-04", "2024-03-11", "2024-03-18", "2024-03-25"]


def _row(view: pd.DataFrame, week: str) -> Any:
    return view.set_index("week").loc[week]


@pytest.mark.slow
@pytest.mark.usefixtures("no_mirror")
def test_prods_mae_on_new_listings_leaves_out_those_it_trained_on(instance):
    from rental_pipeline.evaluation import model_columns
    from rental_pipeline.promotion import training_listings
    from rental_pipeline.week_view import mae
    from rental_pipeline_tests.conftest import artifact_store
    from rental_pipeline_tests.test_partitions import run_week, train_week

    for week in WEEKS[:3]:
        assert run_week(instance, week).success
    assert train_week(instance, WEEKS[3], weeks=4).success  # prod trains on the four weeks, the newest one too
    store = artifact_store()
    prod = store.get("inference_pipeline:prod").ref
    trained = training_listings(store, prod, store.load)
    assert trained
    row = _row(store.load("week_by_week:latest"), WEEKS[3])
    newest, before = (store.load(f"clean_sample.{week}:v0") for week in (WEEKS[3], WEEKS[2]))
    new = newest[~newest["id"].isin(before["id"])]
    unseen = new[~new["id"].isin(trained)]
    model = store.load(prod)
    assert row["prod_mae_new"] == pytest.approx(mae(unseen["price"], model.predict(unseen[model_columns(model)])))
    in_sample = mae(new["price"], model.predict(new[model_columns(model)]))
    assert row["prod_mae_new"] > in_sample  # what the in-sample figure hid
    assert row["new_listings"] == len(new) and row["new_since"] == WEEKS[2]
    assert 0 < row["new_unseen"] == len(unseen) < len(new) / 2  # most of the week's new listings were trained on


@pytest.mark.slow
@pytest.mark.usefixtures("no_mirror")
def test_a_week_accepted_as_reference_after_failing_is_shown_again_not_reused(instance):
    from rental_pipeline_tests.conftest import artifact_store
    from rental_pipeline_tests.test_partitions import run_week, week_config

    assert run_week(instance, WEEKS[0]).success
    assert not run_week(instance, WEEKS[1], week_config(drift=True)).success  # borough_drift fails
    assert run_week(instance, WEEKS[2]).success
    store = artifact_store()
    before = store.get("week_by_week:latest")
    assert "borough_drift" in _row(store.load(before.ref), WEEKS[1])["failed_checks"]

    accepted = week_config(drift=True)
    accepted["ops"]["weekly_clean_sample_checks"]["config"]["accept_as_reference"] = True
    result = run_week(instance, WEEKS[1], accepted)
    assert result.success
    bad = store.get(f"clean_sample.{WEEKS[1]}:latest")
    assert bad.version == 0 and not bad.flags.get("failed_checks")  # the same version, judged again
    assert store.get(f"clean_sample.{WEEKS[1]}:reference").ref == bad.ref
    after = store.get("week_by_week:latest")
    assert after.version > before.version  # computed again, not answered by the run cache
    view = store.load(after.ref)
    assert not _row(view, WEEKS[1])["failed_checks"] and _row(view, WEEKS[1])["drift_bits"] == 0
    assert _row(view, WEEKS[2])["drift_bits"] > 0.2  # the week after is now measured against the new reference


@pytest.mark.slow
@pytest.mark.usefixtures("no_mirror")
def test_the_week_after_a_failed_week_counts_its_new_listings_against_the_last_good_week(instance):
    from rental_pipeline_tests.conftest import artifact_store
    from rental_pipeline_tests.test_partitions import run_week, week_config

    assert run_week(instance, WEEKS[0]).success
    assert not run_week(instance, WEEKS[1], week_config(drift=True)).success  # stopped by borough_drift
    assert run_week(instance, WEEKS[2]).success
    store = artifact_store()
    ids = {week: set(store.load(f"clean_sample.{week}:v0")["id"]) for week in WEEKS[:3]}
    after_bad = _row(store.load("week_by_week:latest"), WEEKS[2])
    assert after_bad["new_listings"] == len(ids[WEEKS[2]] - ids[WEEKS[0]])
    assert after_bad["new_listings"] < len(ids[WEEKS[2]] - ids[WEEKS[1]]) / 2  # far fewer than against the bad week
    assert after_bad["new_since"] == WEEKS[0]


@pytest.mark.slow
@pytest.mark.usefixtures("no_mirror")
def test_a_drop_its_raw_checks_stopped_has_a_row_with_what_it_failed(instance, tmp_path):
    from rental_pipeline.synthetic_weeks import generate_week
    from rental_pipeline_tests.conftest import artifact_store
    from rental_pipeline_tests.test_partitions import run_week, week_config

    assert run_week(instance, WEEKS[0]).success
    broken = generate_week(WEEKS[1], rows=1_500, seed=7)
    broken.loc[[3, 9], "neighbourhood_group"] = "Long Island"
    path = tmp_path / f"listings_{WEEKS[1]}.csv"
    broken.to_csv(path, index=False)
    assert not run_week(instance, WEEKS[1], week_config(source=str(path))).success  # stopped by its raw checks
    assert run_week(instance, WEEKS[2]).success
    store = artifact_store()
    assert f"clean_sample.{WEEKS[1]}" not in store.names()
    view = store.load("week_by_week:latest")
    assert list(view["week"]) == WEEKS[:3]
    stopped = _row(view, WEEKS[1])
    assert stopped["version"] == f"raw_data.{WEEKS[1]}:v0" and stopped["failed_checks"] == "schema"
    assert stopped["rows_in"] == len(broken) and pd.isna(stopped["rows"]) and pd.isna(stopped["new_listings"])
    assert f"raw_data.{WEEKS[1]}:v0" in store.get("week_by_week:latest").inputs
    after = _row(view, WEEKS[2])  # the week after is compared with the last week that has clean listings
    assert after["new_since"] == WEEKS[0]

    # a corrected drop for the first week, stopped by its raw checks: the week keeps its clean listings,
    # and the row says its newest drop failed
    corrected = generate_week(WEEKS[0], rows=1_500, seed=7)
    corrected.loc[[5], "neighbourhood_group"] = "Long Island"
    path = tmp_path / f"listings_{WEEKS[0]}.csv"
    corrected.to_csv(path, index=False)
    assert not run_week(instance, WEEKS[0], week_config(source=str(path))).success
    assert run_week(instance, WEEKS[2]).success  # the next run draws the view again
    view = store.load("week_by_week:latest")
    first = _row(view, WEEKS[0])
    assert first["version"] == f"clean_sample.{WEEKS[0]}:v0"
    assert first["failed_checks"] == f"schema (raw_data.{WEEKS[0]}:v1)"
    assert _row(view, WEEKS[2])["new_since"] == WEEKS[0]  # its clean listings still passed their checks


@pytest.mark.slow
@pytest.mark.usefixtures("no_mirror")
def test_a_week_whose_checks_were_not_judged_is_shown_so_and_never_counted_against(instance):
    from rental_pipeline.definitions import defs
    from rental_pipeline_tests.conftest import artifact_store
    from rental_pipeline_tests.test_partitions import run_week, week_config

    assert run_week(instance, WEEKS[0]).success
    # the drifting week stored without its checks: a run killed before them leaves this
    unchecked = defs.resolve_job_def("weekly_job").get_subset(
        asset_selection={dg.AssetKey("weekly_raw_data"), dg.AssetKey("weekly_clean_sample")},
        asset_check_selection=set(),
    )
    raw = {"ops": {"weekly_raw_data": week_config(drift=True)["ops"]["weekly_raw_data"]}}
    assert unchecked.execute_in_process(instance=instance, partition_key=WEEKS[1], run_config=raw).success
    assert run_week(instance, WEEKS[2]).success
    store = artifact_store()
    view = store.load("week_by_week:latest")
    assert _row(view, WEEKS[1])["failed_checks"] == "not judged yet"
    ids = {week: set(store.load(f"clean_sample.{week}:v0")["id"]) for week in WEEKS[:3]}
    assert _row(view, WEEKS[2])["new_since"] == WEEKS[0]
    assert _row(view, WEEKS[2])["new_listings"] == len(ids[WEEKS[2]] - ids[WEEKS[0]])


@pytest.mark.slow
@pytest.mark.usefixtures("no_mirror")
def test_the_oldest_week_shown_is_compared_with_the_good_week_before_it(instance):
    from rental_pipeline.definitions import defs
    from rental_pipeline_tests.conftest import artifact_store
    from rental_pipeline_tests.test_partitions import run_week

    for week in WEEKS[:3]:
        assert run_week(instance, week).success
    view_job = defs.resolve_job_def("weekly_job").get_subset(asset_selection={dg.AssetKey("week_by_week")})
    config = {"ops": {"week_by_week": {"config": {"weeks": 2}}}}
    assert view_job.execute_in_process(instance=instance, partition_key=WEEKS[2], run_config=config).success
    store = artifact_store()
    view = store.load("week_by_week:latest")
    assert list(view["week"]) == WEEKS[1:3]
    ids = {week: set(store.load(f"clean_sample.{week}:v0")["id"]) for week in WEEKS[:3]}
    oldest = _row(view, WEEKS[1])
    assert oldest["new_since"] == WEEKS[0] and oldest["new_listings"] == len(ids[WEEKS[1]] - ids[WEEKS[0]])
    assert f"clean_sample.{WEEKS[0]}:v0" in store.get("week_by_week:latest").inputs  # its lineage names it
