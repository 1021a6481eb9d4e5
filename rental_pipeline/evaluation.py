"""Scoring a fitted inference pipeline on the test split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.pipeline import Pipeline

from rental_pipeline.features import FEATURE_COLUMNS, TARGET

WORST_ERROR_COLUMNS = ["id", "name", "neighbourhood_group", "room_type", "price", "predicted", "abs_error"]
SCORED_COLUMNS = ["id", "neighbourhood_group", "room_type", TARGET]


@dataclass(frozen=True)
class Evaluation:
    mae: float
    r2: float
    rows: int
    worst_errors: pd.DataFrame
    by_borough: pd.DataFrame  # neighbourhood_group, listings, mae, median_abs_error, mean_price
    scored: pd.DataFrame | None = None  # id, borough, room type, price and `predicted` of every test listing

    def metrics(self) -> dict[str, float]:
        return {"test_mae": self.mae, "test_r2": self.r2, "test_rows": float(self.rows)}


def evaluate_pipeline(pipeline: Pipeline, test: pd.DataFrame, worst: int = 10) -> Evaluation:
    """MAE and R² on listings the model never saw, plus the listings it got most wrong.

    The worst errors are there for a person to read: they usually point at a data problem (a
    monthly price typed as nightly) rather than at the model.
    """
    predicted = pipeline.predict(test[model_columns(pipeline)])
    scored = test.assign(predicted=predicted.round(2), abs_error=(test[TARGET] - predicted).abs().round(2))
    worst_errors = scored.nlargest(worst, "abs_error")[WORST_ERROR_COLUMNS].reset_index(drop=True)
    return Evaluation(
        mae=float(mean_absolute_error(test[TARGET], predicted)),
        r2=float(r2_score(test[TARGET], predicted)),
        rows=len(test),
        worst_errors=worst_errors,
        by_borough=errors_by_borough(test[TARGET], predicted, test["neighbourhood_group"]),
        scored=(
            test[[c for c in SCORED_COLUMNS if c in test.columns]].assign(predicted=predicted).reset_index(drop=True)
        ),
    )


def mean_absolute_error_on(pipeline: Pipeline, listings: pd.DataFrame) -> float:
    """One model's MAE on some listings: champion and challenger on the rows neither trained on."""
    return float(mean_absolute_error(listings[TARGET], pipeline.predict(listings[model_columns(pipeline)])))


def model_columns(pipeline: Pipeline) -> list[str]:
    """The columns a fitted model was fitted on: each model reads its own (the boosted one also
    the host and neighbourhood), and a model stored before a change reads what it was fitted on."""
    names = getattr(pipeline, "feature_names_in_", None)
    return [str(name) for name in names] if names is not None else list(FEATURE_COLUMNS)


def errors_by_borough(price: pd.Series, predicted: Any, borough: pd.Series) -> pd.DataFrame:
    """Test MAE per borough: one overall figure can hide a borough the model prices badly."""
    errors = pd.DataFrame(
        {
            "neighbourhood_group": borough.to_numpy(),
            "price": price.to_numpy(),
            "abs_error": (price - predicted).abs().to_numpy(),
        }
    )
    grouped = errors.groupby("neighbourhood_group", dropna=False, sort=True)
    return pd.DataFrame(
        {
            "listings": grouped.size(),
            "mae": grouped["abs_error"].mean().round(2),
            "median_abs_error": grouped["abs_error"].median().round(2),
            "mean_price": grouped["price"].mean().round(2),
        }
    ).reset_index()
