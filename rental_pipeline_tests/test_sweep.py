"""The sweep: a grid trained on one split, a leaderboard artifact, and its winner trained next."""


import pytest
import yaml
from click.testing import CliRunner

from rental_pipeline.cleaning import clean_listings
from rental_pipeline.cli import main
from rental_pipeline.features import ForestParams
from rental_pipeline.split import split_listings
from rental_pipeline.store import ArtifactStore, default_root
from rental_pipeline.sweep import REFERENCE_GRID, best_training_config, expand_grid, run_sweep, trial_arguments
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
    arguments = trial_arguments({"val_size": 0.3, "forest": FAST}, {"max_tfidf_features": 7, "random_forest.max_features": 0.2})
    assert arguments["val_size"] == 0.3 and arguments["max_tfidf_features"] == 7
    assert arguments["model"] == "random_forest"
    assert arguments["forest"].max_features == 0.2 and arguments["forest"].n_estimators == 8


def test_leaderboard_ranks_trials_by_validation_mae():
    trainval, _ = split_listings(clean_listings(generate_listings(rows=1_500, seed=4))[0])
    grid = {"max_tfidf_features": [2, 20], "random_forest.max_features": [0.2, 1.0]}
    seen = []
    board = run_sweep(trainval, grid, {"forest": FAST}, on_trial=lambda n, trial, result: seen.append(n))
    assert seen == [0, 1, 2, 3] and len(board) == 4
    assert board["val_mae"].is_monotonic_increasing
    best = board.iloc[0]
    again = train_inference_pipeline(
        trainval, model="random_forest", max_tfidf_features=int(best["max_tfidf_features"]),
        forest=ForestParams(**{**FAST.__dict__, "max_features": float(best["random_forest.max_features"])}),
    )
    assert again.metrics["val_mae"] == pytest.approx(best["val_mae"])
    config = best_training_config(board, {"val_size": 0.2, "random_forest": {"n_estimators": 8}})
    assert config == {
        "val_size": 0.2,
        "max_tfidf_features": int(best["max_tfidf_features"]),
        "random_forest": {"n_estimators": 8, "max_features": float(best["random_forest.max_features"])},
    }


def test_sweep_job_records_trials_and_its_best_config_trains_next(instance, isolated_state, tmp_path):
    materialize(instance, run_config(), selection=["raw_data", "clean_sample", "trainval_data", "test_data"])
    sweep = {
        "max_tfidf_features": [3, 12],
        "max_features": [0.3, 0.9],
        "training": {"model": "random_forest", "random_forest": {**FAST_FOREST}},
    }
    runs_before = set((isolated_state / "wandb").rglob("offline-run-*"))
    result = materialize(instance, {"ops": {"sweep_leaderboard": {"config": sweep}}}, selection=["sweep_leaderboard"])
    metadata = materialized(result)["sweep_leaderboard"]
    assert metadata["trials"] == 4 and len(metadata["leaderboard"].records) == 4
    runs = set((isolated_state / "wandb").rglob("offline-run-*")) - runs_before
    assert len(runs) == 5  # four trials and the leaderboard artifact

    board = ArtifactStore(default_root()).load("sweep_leaderboard:latest")
    shown = CliRunner().invoke(main, ["sweep", "show"])
    assert shown.exit_code == 0 and "sweep_leaderboard:v0 (4 trials" in shown.output

    best_yaml = tmp_path / "best.yaml"
    written = CliRunner().invoke(main, ["sweep", "best", "-o", str(best_yaml)])
    assert written.exit_code == 0, written.output
    config = yaml.safe_load(best_yaml.read_text())
    trained = materialized(materialize(instance, config, selection=["inference_pipeline"]))["inference_pipeline"]
    assert trained["val_mae"] == pytest.approx(board["val_mae"].iloc[0])
    assert metadata["best_val_mae"] == pytest.approx(board["val_mae"].iloc[0])


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
    store = ArtifactStore(default_root())
    trained = store.get("inference_pipeline:latest")
    assert trained.metadata["config"]["model"] == "random_forest"
    board = store.load("sweep_leaderboard:latest")
    assert trained.metadata["config"]["random_forest"]["max_features"] == board["random_forest.max_features"].iloc[0]
