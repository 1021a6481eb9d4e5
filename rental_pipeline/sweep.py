"""Hyperparameter sweep: train a grid of configurations and rank them on validation MAE.

The reference ran this as a Hydra multirun and picked the winner by hand in the W&B UI; here the
leaderboard is an artifact, so the choice is recorded and the best configuration can be handed
straight to the next training run.

A grid only varies parameters of the model the sweep trains: a key that model ignores would give
trials that all score the same and a "winner" that is no better than any other, so it is refused.

Grids are checked when the code location loads (the sweep's run config validates them), so
pandas and the training code are imported only when a sweep runs.
"""

from __future__ import annotations

import itertools
import typing
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

from rental_pipeline.model_params import BOOSTED, RANDOM_FOREST, BoostingParams, ForestParams

if TYPE_CHECKING:
    import pandas as pd

    from rental_pipeline.training import TrainingResult

# Grid keys: a model parameter prefixed with its model's config section, or max_tfidf_features
# (the reference preprocessing's, so the forest's only).
FOREST_PREFIX = "random_forest."
BOOSTING_PREFIX = "boosting."
TFIDF_KEY = "max_tfidf_features"
PREFIXES = {RANDOM_FOREST: FOREST_PREFIX, BOOSTED: BOOSTING_PREFIX}
PARAMS: dict[str, type] = {RANDOM_FOREST: ForestParams, BOOSTED: BoostingParams}
NOT_SWEPT = {"n_jobs"}  # how many cores a fit uses, not what it learns: the sweep decides it
# What happens after validation: a trial's validation score is the same either way.
AFTER_VALIDATION = {"refit_on_validation"}

REFERENCE_GRID: dict[str, list[Any]] = {
    TFIDF_KEY: [10, 15, 30],
    "random_forest.max_features": [0.1, 0.33, 0.5, 0.75, 1.0],
}
# Around the boosted default: the histogram boosting models' step size and tree size (learning
# rate 0.15, 31 leaves) and the CatBoost models' tree depth (6), what moves each kind's
# validation MAE most. Smaller histogram trees scored worse on validation and CatBoost trees of
# depth 5 no better than 6 (docs/models.md), so the grid looks at larger ones. 12 trials.
BOOSTED_GRID: dict[str, list[Any]] = {
    "boosting.learning_rate": [0.08, 0.15, 0.25],
    "boosting.max_leaf_nodes": [31, 63],
    "boosting.catboost_depth": [6, 8],
}
DEFAULT_GRIDS = {RANDOM_FOREST: REFERENCE_GRID, BOOSTED: BOOSTED_GRID}


class GridError(ValueError):
    """A grid that cannot give a meaningful sweep; the message says which key and what to do."""


def grid_keys(model: str) -> list[str]:
    """Every key a grid for `model` may vary."""
    prefix, params = PREFIXES[model], PARAMS[model]
    keys = [f"{prefix}{field.name}" for field in fields(params) if field.name not in NOT_SWEPT | AFTER_VALIDATION]
    return ([TFIDF_KEY] if model == RANDOM_FOREST else []) + keys


def default_grid(model: str) -> dict[str, list[Any]]:
    return {key: list(values) for key, values in DEFAULT_GRIDS[model].items()}


def resolve_grid(model: str, grid: Mapping[str, Sequence[Any]] | None) -> dict[str, list[Any]]:
    """The grid to train: `grid` checked and typed for `model`, or that model's default grid when
    none is given. Raises `GridError` for a key the model ignores or a value of the wrong type."""
    if model not in PARAMS:
        raise GridError(f"unknown model {model!r}: use one of {sorted(PARAMS)}")
    if not grid:
        return default_grid(model)
    allowed = grid_keys(model)
    resolved: dict[str, list[Any]] = {}
    for key, values in grid.items():
        if key not in allowed:
            raise GridError(_refusal(model, key, allowed))
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise GridError(f"grid key {key!r}: give a list of values to try, got {values!r}")
        if not values:
            raise GridError(f"grid key {key!r} has no values: give at least one, or leave the key out")
        resolved[key] = [_typed(key, _field_type(model, key), value) for value in values]
    return resolved


def _refusal(model: str, key: str, allowed: Sequence[str]) -> str:
    others = [other for other in PARAMS if other != model and key in grid_keys(other)]
    if others:
        why = (
            f"grid key {key!r} is a parameter of the {others[0]} model, but this sweep trains the {model} model "
            f"(training.model), which ignores it: every trial would score the same. Set training.model: "
            f"{others[0]}, or vary the {model} model's parameters"
        )
    elif key.split(".")[-1] in AFTER_VALIDATION:
        why = f"grid key {key!r} acts after validation, so every trial would score the same"
    elif key.split(".")[-1] in NOT_SWEPT:
        why = f"grid key {key!r} sets how many cores a fit uses, not what it learns; the sweep decides it (workers)"
    else:
        why = f"grid key {key!r} is not a parameter of the {model} model"
    return f"{why}. Keys for {model}: {', '.join(allowed)}."


def _field_type(model: str, key: str) -> Any:
    if key == TFIDF_KEY:
        return int
    hints = typing.get_type_hints(PARAMS[model])
    return hints[key.removeprefix(PREFIXES[model])]


def _typed(key: str, kind: Any, value: Any) -> Any:
    """`value` as the parameter's type (YAML gives 31 for 31.0 and "none" for a missing bound)."""
    options = typing.get_args(kind) or (kind,)
    if type(None) in options and (value is None or (isinstance(value, str) and value.lower() in ("none", "null"))):
        return None
    if bool in options and isinstance(value, bool):
        return value
    if int in options and not isinstance(value, bool):
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    if float in options and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if str in options and isinstance(value, str):
        return value
    wanted = " or ".join("none" if option is type(None) else option.__name__ for option in options)
    raise GridError(f"grid key {key!r}: value {value!r} is not a {wanted}")


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination, in a stable order (keys sorted, values as given)."""
    keys = sorted(key for key, values in grid.items() if len(values))
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[key] for key in keys))]


def trial_arguments(base: Mapping[str, Any], trial: Mapping[str, Any]) -> dict[str, Any]:
    """`train_inference_pipeline` keyword arguments: the base with one trial's values applied."""
    arguments = dict(base)
    forest: ForestParams = arguments.get("forest", ForestParams())
    boosting: BoostingParams = arguments.get("boosting", BoostingParams())
    for key, value in trial.items():
        if key.startswith(FOREST_PREFIX):
            forest = replace(forest, **{key.removeprefix(FOREST_PREFIX): value})
        elif key.startswith(BOOSTING_PREFIX):
            boosting = replace(boosting, **{key.removeprefix(BOOSTING_PREFIX): value})
        else:
            arguments[key] = value
    arguments["forest"], arguments["boosting"] = forest, boosting
    return arguments


def one_core_each(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The same training on one core: trials side by side each get one, rather than all fighting for both.
    The number of cores changes neither model's result."""
    single = dict(arguments)
    single["forest"] = replace(arguments.get("forest", ForestParams()), n_jobs=1)
    single["boosting"] = replace(arguments.get("boosting", BoostingParams()), n_jobs=1)
    return single


def run_sweep(
    trainval: pd.DataFrame,
    grid: Mapping[str, Sequence[Any]],
    base: Mapping[str, Any] | None = None,
    on_trial: Callable[[int, dict[str, Any], TrainingResult], None] | None = None,
    workers: int = 1,
) -> pd.DataFrame:
    """The leaderboard: one row per configuration with its validation scores, best first.

    Every trial uses the same train/validation split (same seed), so scores are comparable. With
    `workers` > 1 that many trials train at once in threads, one core each (scikit-learn's fits
    release the interpreter lock); results and their order do not depend on it, and `on_trial` is
    called in trial order from the calling thread. Fit times are measurements, not results: they go
    to `on_trial`, not into the board, so an unchanged sweep gives identical bytes.
    """
    import pandas as pd

    from rental_pipeline.training import train_inference_pipeline

    base = dict(base or {})
    checked = resolve_grid(base.get("model", BOOSTED), grid)
    trials = expand_grid(checked)

    def train(trial: dict[str, Any]) -> TrainingResult:
        arguments = trial_arguments(base, trial)
        if workers > 1:
            arguments = one_core_each(arguments)
        return train_inference_pipeline(trainval, **arguments, importances=False, final_fit=False)

    rows = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for number, (trial, result) in enumerate(zip(trials, pool.map(train, trials))):
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


def swept_parameters(leaderboard: pd.DataFrame) -> list[str]:
    """The grid keys a leaderboard varied (its columns other than trial number and scores)."""
    return [key for key in leaderboard.columns if key not in ("trial", "val_mae", "val_r2")]


def best_training_config(leaderboard: pd.DataFrame, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The `inference_pipeline` run config of the winning trial, on top of `base` (plain config).

    Settings of the model the sweep did not train (and max_tfidf_features, for the boosted model)
    are left out: the config says what the winner is, not every default the other model has.
    """
    model = (base or {}).get("model", BOOSTED)
    sections = {prefix.rstrip("."): prefix for prefix in PREFIXES.values()}
    unused = {PREFIXES[other].rstrip(".") for other in PREFIXES if other != model}
    if model == BOOSTED:
        unused.add(TFIDF_KEY)
    config: dict[str, Any] = {
        key: value for key, value in (base or {}).items() if key not in sections and key not in unused
    }
    nested: dict[str, dict[str, Any]] = {
        section: dict((base or {}).get(section, {})) for section in sections
    }
    for key in swept_parameters(leaderboard):
        cell = leaderboard[key].iloc[0]  # by column, not by row: a row of mixed types is all floats
        value = cell.item() if hasattr(cell, "item") else cell
        if isinstance(value, float) and value != value:  # a missing bound (None) is NaN in a float column
            value = None
        if model in PARAMS and key in grid_keys(model):
            value = _typed(key, _field_type(model, key), value)
        for section, prefix in sections.items():
            if key.startswith(prefix):
                nested[section][key.removeprefix(prefix)] = value
                break
        else:
            config[key] = value
    config.update({section: values for section, values in nested.items() if values and section not in unused})
    return config
