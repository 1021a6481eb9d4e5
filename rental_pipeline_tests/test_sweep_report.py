"""The sweep's verdict: which trial is the trained configuration, how much better the best trial was,
whether that exceeds the trial-to-trial noise; and its next step launched as a job."""

import numpy as np
import pandas as pd
import pytest

from rental_pipeline.assets.training import TrainingConfig
from rental_pipeline.home import open_store
from rental_pipeline.sweep_report import judge, trained_trial
from rental_pipeline_tests.conftest import FAST_FOREST, materialize, materialized, run_config

BOARD = pd.DataFrame(
    {
        "trial": [0, 1, 2, 3],
        "boosting.learning_rate": [0.05, 0.05, 0.15, 0.15],
        "boosting.max_leaf_nodes": [15, 31, 15, 31],
        "val_mae": [31.0, 30.5, 30.2, 29.0],
        "val_r2": [0.5] * 4,
    }
).sort_values("val_mae", ignore_index=True)
PARAMETERS = ["boosting.learning_rate", "boosting.max_leaf_nodes"]


def test_the_trained_trial_is_the_one_with_the_training_configs_values():
    base = TrainingConfig().model_dump()  # boosted, learning_rate 0.15, max_leaf_nodes 31
    assert trained_trial(BOARD, PARAMETERS, base) == 3
    assert trained_trial(BOARD, PARAMETERS, {**base, "boosting": {**base["boosting"], "max_leaf_nodes": 63}}) is None


def errors_around(mae: float, shared: np.ndarray, own: float, seed: int) -> pd.Series:
    """Absolute errors of one trial: the listings' shared difficulty plus a trial's own noise."""
    values = np.abs(shared + np.random.default_rng(seed).normal(0, own, len(shared)))
    return pd.Series(values * mae / values.mean(), index=np.arange(len(shared)))


def test_a_gain_larger_than_the_paired_noise_is_called_beyond_it_and_a_small_one_within_it():
    shared = np.random.default_rng(0).normal(0, 40, 4_000)
    errors = {trial: errors_around(mae, shared, 3.0, trial) for trial, mae in zip(BOARD["trial"], BOARD["val_mae"])}
    clear = judge(BOARD, errors, trained=1)  # 30.5 against 29.0: $1.50 apart
    assert clear.best_trial == 3 and clear.improvement == pytest.approx(1.5)
    # the paired noise is far below one trial's own standard error: both err on the same hard listings
    assert clear.difference_error < clear.standard_errors[3] / 3
    assert clear.beyond_noise is True and "more than the noise" in clear.text()

    close = BOARD.assign(val_mae=BOARD["val_mae"].where(BOARD["trial"] != 1, 29.01))
    noisy = {trial: errors_around(mae, shared, 30.0, trial) for trial, mae in zip(close["trial"], close["val_mae"])}
    within = judge(close, noisy, trained=1)
    assert within.improvement == pytest.approx(0.01) and within.beyond_noise is False
    assert "within the noise" in within.text() and "±$" in within.text()

    assert "nothing better to train" in judge(BOARD, errors, trained=3).text()


@pytest.mark.slow
def test_the_sweep_page_says_the_gain_and_the_next_step_launches_as_a_job(instance):
    from rental_pipeline.definitions import defs

    data = ["raw_data", "clean_sample", "trainval_data", "test_data"]
    materialize(instance, run_config(), selection=[*data, "inference_pipeline", "model_evaluation"])
    default = TrainingConfig.model_validate({"model": "random_forest", "random_forest": FAST_FOREST})
    sweep = {
        "grid": {"random_forest.max_features": [default.random_forest.max_features, 0.9]},
        "training": {"model": "random_forest", "random_forest": {**FAST_FOREST}},
    }
    result = materialize(instance, {"ops": {"sweep_leaderboard": {"config": sweep}}}, selection=["sweep_leaderboard"])
    page = materialized(result)["sweep_leaderboard"]
    board = open_store().load("sweep_leaderboard:latest")
    trained = int(board.loc[board["random_forest.max_features"] == default.random_forest.max_features, "trial"].iloc[0])
    best = int(board["trial"].iloc[0])
    assert page["trained_trial"] == trained
    if best != trained:
        assert page["gain_over_trained_dollars"] == pytest.approx(
            board.set_index("trial")["val_mae"][trained] - board["val_mae"].iloc[0], abs=0.01
        )
        assert isinstance(page["gain_beyond_noise"], bool) and "noise" in page["gain_over_trained"]
        assert "train_best_job" in page["next_step"]

    # the next step, as the launchpad launches it: no config but the sweep's name, which defaults
    job = defs.resolve_job_def("train_best_job")
    launched = job.execute_in_process(instance=instance)
    assert launched.success
    trained_now = open_store().get("inference_pipeline:latest")
    best_value = board["random_forest.max_features"].iloc[0]
    assert trained_now.metadata["config"]["random_forest"]["max_features"] == pytest.approx(best_value)
    assert {e.asset_key.to_user_string() for e in launched.get_asset_materialization_events()} == {
        "inference_pipeline", "model_evaluation"
    }
