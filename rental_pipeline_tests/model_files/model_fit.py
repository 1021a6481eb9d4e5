"""Fits a small listings price pipeline; run as a script it prints the sha256 of its skops bytes.

The codec test imports the same builder in-process and runs this file in a child process with a
different ``PYTHONHASHSEED``, so a digest that depends on the process (object ids, set order,
timestamps) shows up as a mismatch.
"""

from __future__ import annotations

import hashlib
import sys

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder

import rental_pipeline.model_types  # noqa: F401 - registers flatten_text, which the pipeline holds
from rental_pipeline.features import flatten_text


def listings(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    words = np.array(
        ["cozy", "sunny", "loft", "park", "studio", "view", "quiet", "the", "and", "near"]
    )
    names = [" ".join(rng.choice(words, 4)) for _ in range(n)]
    frame = pd.DataFrame(
        {
            "name": pd.Series(
                [None if i % 17 == 0 else s for i, s in enumerate(names)], dtype="str"
            ),
            "neighbourhood_group": pd.Series(
                rng.choice(["Bronx", "Brooklyn", "Manhattan", "Queens", "Staten Island"], n),
                dtype="str",
            ).mask(np.arange(n) % 23 == 0),
            "room_type": pd.Series(
                rng.choice(["Entire home/apt", "Private room", "Shared room"], n), dtype="str"
            ),
            "minimum_nights": rng.integers(1, 30, n),
            "reviews_per_month": np.where(np.arange(n) % 7 == 0, np.nan, rng.random(n) * 4),
            "latitude": 40.5 + rng.random(n) * 0.7,
        }
    )
    price = 50 + 100 * (frame["room_type"] == "Entire home/apt") + rng.normal(0, 10, n)
    return frame, pd.Series(price, name="price")


def build_pipeline() -> Pipeline:
    preprocess = ColumnTransformer(
        [
            ("room", OrdinalEncoder(), ["room_type"]),
            (
                "borough",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                ["neighbourhood_group"],
            ),
            (
                "numbers",
                SimpleImputer(strategy="constant", fill_value=0),
                ["minimum_nights", "reviews_per_month", "latitude"],
            ),
            (
                "name",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value=""),
                    FunctionTransformer(flatten_text),
                    TfidfVectorizer(max_features=5, stop_words="english"),
                ),
                ["name"],
            ),
        ],
        remainder="drop",
    )
    forest = RandomForestRegressor(n_estimators=10, max_depth=6, random_state=0, n_jobs=1)
    return Pipeline([("preprocess", preprocess), ("forest", forest)])


def fitted_pipeline() -> Pipeline:
    frame, price = listings()
    return build_pipeline().fit(frame, price)


if __name__ == "__main__":
    from rental_pipeline.model_files import encode_model

    sys.stdout.write(hashlib.sha256(encode_model(fitted_pipeline())).hexdigest() + "\n")
