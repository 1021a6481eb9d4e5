"""The two models' names and hyperparameters, as plain values.

These are the only definition of each parameter: the training config shown in the launchpad is
built from these fields (default, and in the metadata the limits a config value must respect)
when the code location loads, long before anything is fitted, so they live apart from the
estimators: importing this module imports no scikit-learn, and loading the code location stays
quick.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BOOSTED = "boosted"
RANDOM_FOREST = "random_forest"
MODELS = (BOOSTED, RANDOM_FOREST)


@dataclass(frozen=True)
class ForestParams:
    """The reference random forest, parameter for parameter."""

    n_estimators: int = field(default=100, metadata={"ge": 1})
    max_depth: int | None = 15
    min_samples_split: int = field(default=4, metadata={"ge": 2})
    min_samples_leaf: int = field(default=3, metadata={"ge": 1})
    criterion: str = "squared_error"
    max_features: float = field(default=0.5, metadata={"gt": 0, "le": 1})
    oob_score: bool = True
    n_jobs: int = -1
    random_state: int = 42


@dataclass(frozen=True)
class BoostingParams:
    """The boosted default model (`rental_pipeline.boosting`); every value was picked on the
    validation split only."""

    learning_rate: float = field(default=0.15, metadata={"gt": 0})
    max_iter: int = field(default=120, metadata={"ge": 1})
    max_leaf_nodes: int = field(default=31, metadata={"ge": 2})
    max_depth: int | None = 10
    min_samples_leaf: int = field(default=10, metadata={"ge": 1})
    l2_regularization: float = field(default=5.0, metadata={"ge": 0})
    max_features: float = field(default=0.4, metadata={"gt": 0, "le": 1})
    max_bins: int = field(default=255, metadata={"ge": 2, "le": 255})
    squared_error_models: int = field(
        default=0,
        metadata={"ge": 0, "le": 8, "description": "Histogram boosting models of log price with squared error."},
    )
    absolute_error_models: int = field(
        default=2,
        metadata={
            "ge": 0,
            "le": 8,
            "description": "Histogram boosting models of log price with absolute error, each on its own seed.",
        },
    )
    catboost_models: int = field(
        default=2,
        metadata={
            "ge": 0,
            "le": 8,
            "description": "CatBoost models of log price averaged with the others: RMSE, then MAE, "
            "alternating, each pair on its own seed.",
        },
    )
    catboost_iterations: int = field(default=500, metadata={"ge": 1, "le": 2_000})
    catboost_learning_rate: float = field(default=0.12, metadata={"ge": 0.0001, "le": 1})
    # At most 2,000 trees of depth 10: a stored CatBoost model stays within what loading one accepts
    # (`catboost_trees.MAX_LEAVES`), and a fit within minutes.
    catboost_depth: int = field(default=6, metadata={"ge": 1, "le": 10})
    catboost_l2_leaf_reg: float = field(default=3.0, metadata={"ge": 0, "le": 1_000})
    catboost_border_count: int = field(default=64, metadata={"ge": 2, "le": 254})
    text_alpha: float = field(default=1.0, metadata={"gt": 0})
    text_min_df: int = field(default=2, metadata={"ge": 1})
    text_folds: int = field(default=5, metadata={"ge": 2})
    n_jobs: int = field(default=2, metadata={"ge": 1})
    random_state: int = 42
    refit_on_validation: bool = field(
        default=True,
        metadata={
            "description": "Once validated, fit the stored model again on train + validation rows "
            "(its validation figures stay those of the fit on train only)."
        },
    )

    def __post_init__(self) -> None:
        if self.squared_error_models + self.absolute_error_models + self.catboost_models < 1:
            raise ValueError(
                "the boosted model averages no models: set squared_error_models, absolute_error_models "
                "or catboost_models to at least 1"
            )
