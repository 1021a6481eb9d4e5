"""Fitting the inference pipeline on trainval and measuring it on a held-out validation part."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.pipeline import Pipeline

from rental_pipeline.boosting import boosted_feature_importances, build_boosted_pipeline
from rental_pipeline.features import FEATURE_COLUMNS, TARGET, build_inference_pipeline, feature_importances
from rental_pipeline.model_params import BOOSTED, MODELS, RANDOM_FOREST, BoostingParams, ForestParams
from rental_pipeline.split import split_listings

@dataclass(frozen=True)
class TrainingResult:
    pipeline: Pipeline
    metrics: dict[str, float]
    importances: pd.DataFrame  # feature, importance: larger matters more


def build_pipeline(
    model: str = BOOSTED,
    *,
    max_tfidf_features: int = 5,
    forest: ForestParams = ForestParams(),
    boosting: BoostingParams = BoostingParams(),
) -> Pipeline:
    """The unfitted inference pipeline of the chosen model: the reference forest or the boosted default."""
    if model == RANDOM_FOREST:
        return build_inference_pipeline(max_tfidf_features, forest)
    if model == BOOSTED:
        return build_boosted_pipeline(boosting)
    raise ValueError(f"unknown model {model!r}: use one of {MODELS}")


def train_inference_pipeline(
    trainval: pd.DataFrame,
    *,
    val_size: float = 0.2,
    random_seed: int = 42,
    stratify_by: str = "neighbourhood_group",
    model: str = BOOSTED,
    max_tfidf_features: int = 5,
    forest: ForestParams = ForestParams(),
    boosting: BoostingParams = BoostingParams(),
) -> TrainingResult:
    """Split trainval into train and validation as the reference does, fit on train, score on validation.

    Validation numbers are what model choices are made on; the test split stays untouched until
    evaluation.
    """
    train, validation = split_listings(
        trainval, test_size=val_size, random_seed=random_seed, stratify_by=stratify_by
    )
    pipeline = build_pipeline(model, max_tfidf_features=max_tfidf_features, forest=forest, boosting=boosting)
    started = time.perf_counter()
    pipeline.fit(train[FEATURE_COLUMNS], train[TARGET])
    fit_seconds = time.perf_counter() - started
    predicted = pipeline.predict(validation[FEATURE_COLUMNS])
    metrics = {
        "val_mae": float(mean_absolute_error(validation[TARGET], predicted)),
        "val_r2": float(r2_score(validation[TARGET], predicted)),
        "fit_seconds": fit_seconds,
        "train_rows": float(len(train)),
        "val_rows": float(len(validation)),
    }
    regressor = pipeline["regressor"]
    if getattr(regressor, "oob_score", False):
        metrics["oob_r2"] = float(regressor.oob_score_)
    if hasattr(regressor, "feature_importances_"):
        importances = feature_importances(pipeline)
    else:
        # No impurity importances: how much validation MAE rises when each feature is shuffled.
        permuted = boosted_feature_importances(pipeline, validation, validation[TARGET], n_repeats=3)
        importances = permuted.rename(columns={"mae_increase": "importance"})[["feature", "importance"]]
    return TrainingResult(pipeline=pipeline, metrics=metrics, importances=importances)
