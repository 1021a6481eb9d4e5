"""Hyperparameter sweep: train a grid of configurations and rank them on validation MAE.

The reference ran this as a Hydra multirun and picked the winner by hand in the W&B UI; here the
leaderboard is an artifact, so the choice is recorded and the best configuration can be handed
straight to the next training run.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd

from rental_pipeline.features import ForestParams
from rental_pipeline.training import RANDOM_FOREST, TrainingResult, train_inference_pipeline

# Grid keys are training parameters, or random-forest parameters prefixed with "random_forest.".
FOREST_PREFIX = "random_forest."
REFERENCE_GRID: dict[str, list[Any]] = {
    "max_tfidf_features": [10, 15, 30],
    "random_forest.max_features": [0.1, 0.33, 0.5, 0.75, 1.0],
}


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination, in a stable order (keys sorted, values as given)."""
    keys = sorted(key for key, values in grid.items() if len(values))
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[key] for key in keys))]


def trial_arguments(base: Mapping[str, Any], trial: Mapping[str, Any]) -> dict[str, Any]:
    """`train_inference_pipeline` keyword arguments: the base with one trial's values applied.

    The reference grid tunes the random forest, so that is the model unless the base says otherwise.
    """
    arguments = {"model": RANDOM_FOREST, **base}
    forest: ForestParams = arguments.get("forest", ForestParams())
    for key, value in trial.items():
        if key.startswith(FOREST_PREFIX):
            forest = replace(forest, **{key.removeprefix(FOREST_PREFIX): value})
        else:
            arguments[key] = value
    arguments["forest"] = forest
    return arguments


def run_sweep(
    trainval: pd.DataFrame,
    grid: Mapping[str, Sequence[Any]],
    base: Mapping[str, Any] | None = None,
    on_trial: Callable[[int, dict[str, Any], TrainingResult], None] | None = None,
) -> pd.DataFrame:
    """The leaderboard: one row per configuration with its validation scores, best first.

    Every trial uses the same train/validation split (same seed), so scores are comparable. Fit
    times are measurements, not results: they go to `on_trial`, not into the board, so an
    unchanged sweep gives identical bytes.
    """
    rows = []
    for number, trial in enumerate(expand_grid(grid)):
        result = train_inference_pipeline(trainval, **trial_arguments(base or {}, trial))
        if on_trial is not None:
            on_trial(number, trial, result)
        rows.append(
            {
                "trial": number,
                **trial,
                "val_mae": result.metrics["val_mae"],
                "val_r2": result.metrics["val_r2"],
            }
        )
    board = pd.DataFrame(rows)
    return board.sort_values(["val_mae", "trial"], ignore_index=True)


def best_training_config(leaderboard: pd.DataFrame, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The `inference_pipeline` run config of the winning trial, on top of `base` (plain config)."""
    config: dict[str, Any] = {key: value for key, value in (base or {}).items() if key != "random_forest"}
    forest = dict((base or {}).get("random_forest", {}))
    for key in leaderboard.columns:
        if key in ("trial", "val_mae", "val_r2"):
            continue
        cell = leaderboard[key].iloc[0]  # by column, not by row: a row of mixed types is all floats
        value = cell.item() if hasattr(cell, "item") else cell
        if key.startswith(FOREST_PREFIX):
            forest[key.removeprefix(FOREST_PREFIX)] = value
        else:
            config[key] = value
    if forest:
        config["random_forest"] = forest
    return config
