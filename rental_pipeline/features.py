"""The inference pipeline: preprocessing and regressor in one scikit-learn `Pipeline`.

Everything a prediction needs travels inside the fitted pipeline (imputation values, the TF-IDF
vocabulary, the review-date reference day), so a stored pipeline scores any batch of raw listing
rows the same way, whatever else is in the batch.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder

from rental_pipeline.model_params import ForestParams

ORDINAL_CATEGORICAL = ["room_type"]
NON_ORDINAL_CATEGORICAL = ["neighbourhood_group"]
ZERO_IMPUTED = [
    "minimum_nights",
    "number_of_reviews",
    "reviews_per_month",
    "calculated_host_listings_count",
    "availability_365",
    "longitude",
    "latitude",
]
DATE_COLUMN = "last_review"
TEXT_COLUMN = "name"
FEATURE_COLUMNS = ORDINAL_CATEGORICAL + NON_ORDINAL_CATEGORICAL + ZERO_IMPUTED + [DATE_COLUMN, TEXT_COLUMN]
TARGET = "price"

MISSING_REVIEW_DATE = "2010-01-01"


class DaysBeforeReference(TransformerMixin, BaseEstimator):
    """Turn dates into days before a reference day fixed when the pipeline is fitted.

    The reference implementation counted days from the newest date of whatever batch it was
    scoring, so the same listing got a different feature (and price) depending on its neighbours in
    the batch. Here the reference day is the newest date seen in training and is stored with the
    model. Missing dates are imputed with `fill_date` first, as in the reference.
    """

    def __init__(self, fill_date: str = MISSING_REVIEW_DATE):
        self.fill_date = fill_date

    def _days(self, dates: Any) -> pd.DataFrame:
        frame = pd.DataFrame(dates)
        return frame.apply(lambda column: pd.to_datetime(column).fillna(pd.Timestamp(self.fill_date)))

    def fit(self, X: Any, y: Any = None) -> DaysBeforeReference:
        dates = self._days(X)
        self.reference_date_ = str(dates.max().max().date())
        self.n_features_in_ = dates.shape[1]
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def transform(self, X: Any) -> np.ndarray:
        dates = self._days(X)
        reference = pd.Timestamp(self.reference_date_)
        return dates.apply(lambda column: (reference - column).dt.days).to_numpy(dtype=float)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = input_features if input_features is not None else getattr(self, "feature_names_in_", None)
        if names is None:
            names = [f"x{i}" for i in range(self.n_features_in_)]
        return np.asarray([f"{name}_days" for name in names], dtype=object)


def flatten_text(column: Any) -> np.ndarray:
    """TF-IDF wants one string per row, not a one-column table."""
    return np.asarray(column).reshape(-1)


def build_preprocessor(max_tfidf_features: int = 5) -> ColumnTransformer:
    """The reference's feature engineering, with the date and naming quirks fixed."""
    name_tfidf = make_pipeline(
        SimpleImputer(strategy="constant", fill_value=""),
        FunctionTransformer(flatten_text, feature_names_out="one-to-one"),
        TfidfVectorizer(binary=False, max_features=max_tfidf_features, stop_words="english"),
    )
    return ColumnTransformer(
        transformers=[
            ("ordinal_cat", OrdinalEncoder(), ORDINAL_CATEGORICAL),
            (
                "non_ordinal_cat",
                make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder()),
                NON_ORDINAL_CATEGORICAL,
            ),
            ("impute_zero", SimpleImputer(strategy="constant", fill_value=0), ZERO_IMPUTED),
            ("transform_date", DaysBeforeReference(), [DATE_COLUMN]),
            ("transform_name", name_tfidf, [TEXT_COLUMN]),
        ],
        remainder="drop",
    )


def build_forest_pipeline(
    max_tfidf_features: int = 5, forest: ForestParams = ForestParams()
) -> Pipeline:
    """Preprocessing plus the reference random forest, unfitted."""
    return Pipeline(
        steps=[
            ("preprocessor", build_preprocessor(max_tfidf_features)),
            ("regressor", RandomForestRegressor(**asdict(forest))),
        ]
    )


def feature_importances(pipeline: Pipeline) -> pd.DataFrame:
    """Impurity importances labelled by `get_feature_names_out`, most important first, with their
    spread (standard deviation) over the forest's trees.

    The reference labelled its importance plot by position in its own column list, which is wrong
    as soon as one-hot or TF-IDF expand a column into several.
    """
    names = pipeline["preprocessor"].get_feature_names_out()
    forest = pipeline["regressor"]
    per_tree = [tree.feature_importances_ for tree in getattr(forest, "estimators_", [])]
    spread = np.std(per_tree, axis=0) if per_tree else np.zeros(len(names))
    table = pd.DataFrame({"feature": names, "importance": forest.feature_importances_, "spread": spread})
    return table.sort_values("importance", ascending=False, ignore_index=True)
