"""The whole asset graph through Dagster, in-process, on small synthetic listings."""

import dagster as dg
import pytest

from rental_pipeline.definitions import defs
from rental_pipeline_tests.conftest import executed_steps, materialize, materialized, run_config

TRAINING_ASSETS = {"raw_data", "clean_sample", "trainval_data", "test_data", "inference_pipeline", "model_evaluation"}


def test_definitions_load_with_the_training_job():
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    weekly = {"weekly_raw_data", "weekly_clean_sample", "week_by_week"}
    assert keys == TRAINING_ASSETS | {"batch_predictions", "sweep_leaderboard"} | weekly
    training = defs.resolve_job_def("training_job")  # a run that names no week: the weekly assets are not in it
    assert {key.to_user_string() for key in training.asset_layer.executable_asset_keys} == TRAINING_ASSETS


@pytest.mark.slow
def test_whole_graph_materializes_with_what_a_person_needs_to_see(instance):
    result = materialize(instance)
    assert result.success
    metadata = materialized(result)
    assert set(metadata) == TRAINING_ASSETS | {"batch_predictions", "sweep_leaderboard"}

    raw, clean = metadata["raw_data"], metadata["clean_sample"]
    assert raw["dagster/row_count"] == 1_500
    assert clean["dagster/row_count"] == 1_500 - clean["dropped_price_outliers"] - clean["dropped_outside_box"]
    assert clean["dropped_price_outliers"] > 0
    schema = clean["dagster/column_schema"]
    assert [c.name for c in schema.columns][:3] == ["id", "name", "host_id"]
    assert {c.name: c.type for c in schema.columns}["last_review"] == "date"
    assert set(clean["price_quantiles"].records[0].data) >= {"p05", "p50", "p95"}  # a table, one column a quantile
    boroughs = {r.data["neighbourhood_group"]: r.data["listings"] for r in clean["listings_per_borough"].records}
    assert sum(boroughs.values()) == clean["dagster/row_count"]
    assert metadata["trainval_data"]["dagster/row_count"] + metadata["test_data"]["dagster/row_count"] == (
        clean["dagster/row_count"]
    )

    model = metadata["inference_pipeline"]
    assert 0 < model["val_mae"] < 100 and model["val_r2"] > 0.1
    assert model["fit_seconds"] > 0
    names = [record.data["feature"] for record in model["feature_importances"].records]
    assert "ordinal_cat__room_type" in names and any(n.startswith("transform_name__") for n in names)

    evaluation = metadata["model_evaluation"]
    assert evaluation["test_rows"] == metadata["test_data"]["dagster/row_count"]
    assert 0 < evaluation["test_mae"] < 100
    worst = [record.data for record in evaluation["worst_errors"].records]
    assert len(worst) == 10
    assert worst[0]["abs_error"] >= worst[-1]["abs_error"]

    # "Materialize all" shows the test MAE and the promotion decision before the sweep starts
    order = [(e.event_type_value, e.step_key) for e in result.all_events]
    sweep_starts = order.index(("STEP_START", "sweep_leaderboard"))
    assert order.index(("STEP_SUCCESS", "model_evaluation")) < sweep_starts
    assert order.index(("STEP_SUCCESS", "batch_predictions")) < sweep_starts


@pytest.mark.slow
def test_rematerializing_clean_sample_downstream_reuses_stored_raw_data(instance):
    first = materialize(instance)
    second = materialize(
        instance,
        run_config(training={"max_tfidf_features": 3}),
        selection=dg.AssetSelection.assets("clean_sample").downstream(),
    )
    assert "raw_data" not in executed_steps(second)
    assert executed_steps(second) == {
        "clean_sample", "split_listings", "inference_pipeline", "model_evaluation", "batch_predictions",
        "sweep_leaderboard",
        # and the checks of what was re-materialized, but not raw_data's
        "clean_sample_checks", "trainval_data_schema", "test_data_checks",
    }
    loaded = [e for e in second.all_events if e.event_type_value == "LOADED_INPUT" and e.step_key == "clean_sample"]
    assert [e.event_specific_data.input_name for e in loaded] == ["raw_data"]
    assert materialized(second)["clean_sample"]["rows_in"] == materialized(first)["raw_data"]["dagster/row_count"]
    assert materialized(second)["clean_sample"]["dagster/row_count"] == (
        materialized(first)["clean_sample"]["dagster/row_count"]
    )


@pytest.mark.slow
@pytest.mark.parametrize("selected", ["trainval_data", "test_data"])
def test_one_side_of_the_split_can_be_materialized_alone(instance, selected):
    materialize(instance, run_config(), selection=["raw_data", "clean_sample"])
    result = materialize(instance, {}, selection=[selected])
    assert set(materialized(result)) == {selected}


@pytest.mark.slow
def test_stratify_none_runs_through_split_and_training(instance):
    config = run_config(training={"stratify_by": "none"}, split_listings={"stratify_by": "none"})
    assert materialize(instance, config).success


@pytest.mark.slow
def test_a_real_csv_source_is_read(instance, tmp_path):
    from rental_pipeline.synthetic import generate_listings

    path = tmp_path / "drop.csv"
    generate_listings(rows=700, seed=11).to_csv(path, index=False)
    result = materialize(instance, run_config(raw={"source": path.as_uri()}), selection=["raw_data"])
    metadata = materialized(result)["raw_data"]
    assert metadata["dagster/row_count"] == 700
    assert metadata["source"] == path.as_uri()
    assert len(metadata["source_sha256"]) == 64


def test_a_bad_source_fails_raw_data_with_the_file_named(instance, tmp_path):
    missing = tmp_path / "nope.csv"
    result = materialize(instance, run_config(raw={"source": str(missing)}), raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "raw_data"
    assert "nope.csv" in str(failure.event_specific_data.error) and "does not exist" in str(
        failure.event_specific_data.error
    )
    assert not materialized(result)
