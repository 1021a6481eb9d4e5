"""The two models' names and hyperparameters, as plain values.

The training config shown in the launchpad is built from these defaults when the code location
loads, long before anything is fitted, so they live apart from the estimators: importing this
module imports no scikit-learn, and loading the code location stays quick.
"""

from __future__ import annotations

from dataclasses import dataclass

BOOSTED = "boosted"
RANDOM_FOREST = "random_forest"
MODELS = (BOOSTED, RANDOM_FOREST)


@dataclass(frozen=True)
class ForestParams:
    """The reference random forest, parameter for parameter."""

    n_estimators: int = 100
    max_depth: int | None = 15
    min_samples_split: int = 4
    min_samples_leaf: int = 3
    criterion: str = "squared_error"
    max_features: float = 0.5
    oob_score: bool = True
    n_jobs: int = -1
    random_state: int = 42


@dataclass(frozen=True)
class BoostingParams:
    """The boosted default model (`rental_pipeline.boosting`); every value was picked on the
    validation split only."""

    learning_rate: float = 0.15
    max_iter: int = 120
    max_leaf_nodes: int = 31
    max_depth: int | None = 10
    min_samples_leaf: int = 10
    l2_regularization: float = 5.0
    max_features: float = 0.5
    max_bins: int = 127
    text_alpha: float = 1.0
    text_min_df: int = 2
    text_folds: int = 5
    n_jobs: int = 2
    random_state: int = 42
