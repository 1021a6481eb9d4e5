"""The sweep: a grid trained on one split, a leaderboard artifact, and its winner trained next."""


import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from rental_pipeline.boosting import BoostingParams
from rental_pipeline.cleaning import clean_listings
from rental_pipeline.cli import main
from rental_pipeline.features import ForestParams
from rental_pipeline.home import open_store
from rental_pipeline.split import split_listings
from rental_pipeline.sweep import (
    BOOSTED_GRID,
    REFERENCE_GRID,
    GridError,
    best_training_config,
    expand_grid,
    resolve_grid,
    run_sweep,
    trial_arguments,
)
from rental_pipeline.synthetic import generate_listings
from rental_pipeline.training import train_inference_pipeline
from rental_pipeline_tests.conftest import FAST_FOREST, materialize, materialized, run_config

FAST = ForestParams(n_estimators=8, max_depth=8, n_jobs=1, oob_score=False)


def test_reference_grid_has_fifteen_configurations():
    trials = expand_grid(REFERENCE_GRID)
    assert len(trials) == 15
    assert trials[0] == {"max_tfidf_features": 10, "random_forest.max_features": 0.1}
    assert len({tuple(sorted(t.items())) for t in trials}) == 15


def test_trial_values_override_the_base():
    base = {"model": "random_forest", "val_size": 0.3, "forest": FAST}
    arguments = trial_arguments(base, {"max_tfidf_features": 7, "random_forest.max_features": 0.2})
    assert arguments["val_size"] == 0.3 and arguments["max_tfidf_features"] == 7
    assert arguments["model"] == "random_forest"
    assert arguments["forest"].max_features == 0.2 and arguments["forest"].n_estimators == 8
    boosted = trial_arguments({}, {"boosting.learning_rate": 0.3, "boosting.max_leaf_nodes": 7})
    assert boosted["boosting"].learning_rate == 0.3 and boosted["boosting"].max_leaf_nodes == 7
    assert boosted["boosting"].l2_regularization == BoostingParams().l2_regularization


def test_each_model_has_a_default_grid_of_its_own_parameters():
    assert resolve_grid("random_forest", None) == REFERENCE_GRID
    boosted = resolve_grid("boosted", None)
    assert boosted == BOOSTED_GRID and len(expand_grid(boosted)) > 1
    assert all(key.startswith("boosting.") for key in boosted)
    # every default grid includes the model's own default, so a sweep can never only do worse
    for key, values in boosted.items():
        assert getattr(BoostingParams(), key.removeprefix("boosting.")) in values


@pytest.mark.parametrize(
    ("model", "key", "said"),
    [
        ("boosted", "random_forest.max_features", "parameter of the random_forest model"),
        ("boosted", "max_tfidf_features", "parameter of the random_forest model"),
        ("random_forest", "boosting.learning_rate", "parameter of the boosted model"),
        ("boosted", "boosting.n_jobs", "how many cores"),
        ("boosted", "boosting.learning_rat", "not a parameter of the boosted model"),
    ],
)
def test_a_grid_key_the_model_ignores_is_refused(model, key, said):
    with pytest.raises(GridError, match=said) as refused:
        resolve_grid(model, {key: [1, 2]})
    assert repr(key) in str(refused.value) and "Keys for" in str(refused.value)


def test_grid_values_are_typed_like_the_parameters():
    grid = resolve_grid("random_forest", {"random_forest.max_depth": [None, "none", 8.0], "max_tfidf_features": [5]})
    assert grid == {"random_forest.max_depth": [None, None, 8], "max_tfidf_features": [5]}
    with pytest.raises(GridError, match="'random_forest.n_estimators': value 2.5 is not a int"):
        resolve_grid("random_forest", {"random_forest.n_estimators": [2.5]})
    with pytest.raises(GridError, match="no values"):
        resolve_grid("boosted", {"boosting.learning_rate": []})


def test_trials_side_by_side_give_the_same_board():
    trainval, _ = split_listings(clean_listings(generate_listings(rows=1_500, seed=4))[0])
    grid = {"random_forest.max_features": [0.2, 0.6, 1.0]}
    base = {"model": "random_forest", "forest": FAST}
    one, seen = run_sweep(trainval, grid, base), []
    two = run_sweep(trainval, grid, base, workers=2, on_trial=lambda n, trial, result: seen.append(n))
    assert seen == [0, 1, 2]
    pd.testing.assert_frame_equal(one, two)


def test_leaderboard_ranks_trials_by_validation_mae():
    trainval, _ = split_listings(clean_listings(generate_listings(rows=1_500, seed=4))[0])
    grid = {"max_tfidf_features": [2, 20], "random_forest.max_features": [0.2, 1.0]}
    seen = []
    board = run_sweep(
        trainval, grid, {"model": "random_forest", "forest": FAST}, on_trial=lambda n, trial, result: seen.append(n)
    )
    assert seen == [0, 1, 2, 3] and len(board) == 4
    assert board["val_mae"].is_monotonic_increasing
    best = board.iloc[0]
    again = train_inference_pipeline(
        trainval, model="random_forest", max_tfidf_features=int(best["max_tfidf_features"]),
        forest=ForestParams(**{**FAST.__dict__, "max_features": float(best["random_forest.max_features"])}),
    )
    assert again.metrics["val_mae"] == pytest.approx(best["val_mae"])
    base = {"model": "random_forest", "val_size": 0.2, "random_forest": {"n_estimators": 8}, "boosting": {}}
    config = best_training_config(board, base)
    assert config == {
        "model": "random_forest",
        "val_size": 0.2,
        "max_tfidf_features": int(best["max_tfidf_features"]),
        "random_forest": {"n_estimators": 8, "max_features": float(best["random_forest.max_features"])},
    }


@pytest.mark.slow
def test_sweep_job_records_trials_and_its_best_config_trains_next(instance, isolated_state, tmp_path):
    materialize(instance, run_config(), selection=["raw_data", "clean_sample", "trainval_data", "test_data"])
    sweep = {
        "grid": {"max_tfidf_features": [3, 12], "random_forest.max_features": [0.3, 0.9]},
        "training": {"model": "random_forest", "random_forest": {**FAST_FOREST}},
    }
    runs_before = set((isolated_state / "wandb").rglob("offline-run-*"))
    result = materialize(instance, {"ops": {"sweep_leaderboard": {"config": sweep}}}, selection=["sweep_leaderboard"])
    metadata = materialized(result)["sweep_leaderboard"]
    assert metadata["trials"] == 4 and len(metadata["leaderboard"].records) == 4
    runs = set((isolated_state / "wandb").rglob("offline-run-*")) - runs_before
    assert len(runs) == 5  # four trials and the leaderboard artifact

    board = open_store().load("sweep_leaderboard:latest")
    shown = CliRunner().invoke(main, ["sweep", "show"])
    assert shown.exit_code == 0 and "sweep_leaderboard:v0 (4 trials" in shown.output

    best_yaml = tmp_path / "best.yaml"
    written = CliRunner().invoke(main, ["sweep", "best", "-o", str(best_yaml)])
    assert written.exit_code == 0, written.output
    config = yaml.safe_load(best_yaml.read_text())
    materialize(instance, config, selection=["inference_pipeline"])
    # the store keeps every digit (the page shows four)
    facts = open_store().get("inference_pipeline:latest").metadata["facts"]
    assert facts["val_mae"] == board["val_mae"].iloc[0]
    assert metadata["best_val_mae"] == pytest.approx(board["val_mae"].iloc[0], abs=0.01)


@pytest.mark.slow
def test_best_config_trains_in_one_command(instance, tmp_path):
    """`sweep best --train` runs training_job through the dagster CLI in a real subprocess."""
    materialize(instance, run_config(), selection=["raw_data", "clean_sample", "trainval_data", "test_data"])
    materialize(instance, run_config(), selection=["sweep_leaderboard"])
    small = tmp_path / "small.yaml"
    small.write_text(yaml.safe_dump({"ops": {"raw_data": {"config": {"rows": 1_500, "seed": 7}},
                                             "clean_sample_checks": {"config": {"min_rows": 100}}}}))
    result = CliRunner().invoke(main, ["sweep", "best", "--train", "-c", str(small)])
    assert result.exit_code == 0, result.output
    store = open_store()
    trained = store.get("inference_pipeline:latest")
    assert trained.metadata["config"]["model"] == "random_forest"
    board = store.load("sweep_leaderboard:latest")
    assert trained.metadata["config"]["random_forest"]["max_features"] == board["random_forest.max_features"].iloc[0]


@pytest.mark.slow
def test_the_default_sweep_searches_the_default_model(instance):
    """With no run config at all the sweep trains the boosted default over its own grid, so trials
    differ: a grid of parameters the model ignores would score every trial the same."""
    materialize(instance, run_config(), selection=["raw_data", "clean_sample", "trainval_data", "test_data"])
    result = materialize(instance, {}, selection=["sweep_leaderboard"])
    metadata = materialized(result)["sweep_leaderboard"]
    assert metadata["model"] == "boosted"
    assert metadata["grid"] == BOOSTED_GRID
    board = open_store().load("sweep_leaderboard:latest")
    assert len(board) == len(expand_grid(BOOSTED_GRID))
    assert board["val_mae"].nunique() == len(board), "trials with different settings scored the same"
    assert set(metadata["best_config"]) == {"model", "val_size", "random_seed", "stratify_by", "boosting"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("grid", "said"),
    [
        ({"random_forest.max_features": [0.5, 1.0]},
         "is a parameter of the random_forest model, but this sweep trains the boosted model"),
        ({"boosting.learning_rate": [0.1, -1]}, "'boosting.learning_rate': value -1.0 is not allowed (Input should be"),
        ({"boosting.max_bins": [300]}, "'boosting.max_bins': value 300 is not allowed"),
    ],
)
def test_a_sweep_that_cannot_mean_anything_is_refused_before_training(instance, grid, said):
    materialize(instance, run_config(), selection=["raw_data", "clean_sample", "trainval_data"])
    config = {"ops": {"sweep_leaderboard": {"config": {"grid": grid}}}}
    result = materialize(instance, config, selection=["sweep_leaderboard"], raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert said in str(failure.event_specific_data.error)
    assert not any(e.event_type_value == "ASSET_MATERIALIZATION" for e in result.all_events)
