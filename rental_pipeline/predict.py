"""Batch predictions: score a listings file of any size with a stored inference pipeline.

The file is read in chunks so memory stays flat however many rows it has, and a row the model
cannot use (a price model fed "abc" as latitude) gets a message in its own error column instead of
failing the whole batch: one bad row in a million should cost one prediction, not the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

PREDICTION = "predicted_price"
ERROR = "prediction_error"
DEFAULT_CHUNK_ROWS = 100_000
NUMERIC_FEATURES = frozenset(
    {
        "latitude",
        "longitude",
        "minimum_nights",
        "number_of_reviews",
        "reviews_per_month",
        "calculated_host_listings_count",
        "availability_365",
    }
)
DATE_FEATURES = frozenset({"last_review"})


@dataclass(frozen=True)
class PredictionSummary:
    rows: int
    predicted: int
    failed: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else float("inf")


def required_columns(model: Pipeline) -> list[str]:
    """The columns the fitted pipeline was trained on; anything else in the file is passed through."""
    return [str(c) for c in model.feature_names_in_]


def _typed_features(chunk: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, pd.Series]:
    """Features typed as in training, and a per-row message for every value that cannot be."""
    errors = pd.Series("", index=chunk.index, dtype=object)
    features = {}
    for column in columns:
        values = chunk[column]
        if column in NUMERIC_FEATURES:
            typed = pd.to_numeric(values, errors="coerce")
            bad = typed.isna() & values.notna()
            what = "not a number"
        elif column in DATE_FEATURES:
            typed = pd.to_datetime(values, format="%Y-%m-%d", errors="coerce")
            bad = typed.isna() & values.notna()
            what = "not a YYYY-MM-DD date"
        else:
            typed = values.astype("str")
            bad = pd.Series(False, index=chunk.index)
            what = ""
        if bad.any():
            errors[bad] += [f"{column}: {value!r} is {what}; " for value in values[bad]]
        features[column] = typed
    return pd.DataFrame(features, index=chunk.index), errors


def predict_frame(model: Pipeline, chunk: pd.DataFrame) -> pd.DataFrame:
    """The chunk with a predicted price and an error message per row (empty when it was scored)."""
    columns = required_columns(model)
    missing = [c for c in columns if c not in chunk.columns]
    if missing:
        raise ValueError(f"input has no column(s) {missing}; the model needs {columns}")
    features, errors = _typed_features(chunk, columns)
    predictions = pd.Series(np.nan, index=chunk.index)
    _predict_or_blame(model, features[errors == ""], predictions, errors)
    return chunk.assign(**{PREDICTION: predictions.round(2), ERROR: errors.str.rstrip("; ")})


def _predict_or_blame(model: Pipeline, features: pd.DataFrame, predictions: pd.Series, errors: pd.Series) -> None:
    """Predict all rows at once; if the model refuses (e.g. an unknown room type, which only the
    fitted encoder knows), halve the rows until the refused ones are found: a few bad rows cost a
    few dozen extra calls, not one call per row."""
    if features.empty:
        return
    try:
        predictions[features.index] = model.predict(features)
    except ValueError as error:
        if len(features) == 1:
            errors[features.index] = f"the model refused this row ({str(error).splitlines()[0]}); "
            return
        middle = len(features) // 2
        _predict_or_blame(model, features.iloc[:middle], predictions, errors)
        _predict_or_blame(model, features.iloc[middle:], predictions, errors)


def predict_csv(
    model: Pipeline,
    source: Path | str,
    destination: Path | str,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_progress: Callable[[int, int], None] | None = None,
) -> PredictionSummary:
    """Score `source` chunk by chunk into `destination` (input columns + prediction + error).

    `on_progress(bytes_read, rows_done)` is called after each chunk, for a progress bar.
    """
    started = time.perf_counter()
    rows = failed = 0
    destination = Path(destination)
    partial = destination.with_name(destination.name + ".partial")
    with open(source, "rb") as handle, open(partial, "w", newline="", encoding="utf-8") as out:
        reader = pd.read_csv(handle, chunksize=chunk_rows, dtype=str, keep_default_na=False, na_values=[""])
        for number, chunk in enumerate(reader):
            scored = predict_frame(model, chunk)
            scored.to_csv(out, index=False, header=number == 0)
            rows += len(scored)
            failed += int((scored[ERROR] != "").sum())
            if on_progress is not None:
                on_progress(handle.tell(), rows)
    partial.replace(destination)  # a half-written output never stands under the final name
    return PredictionSummary(rows=rows, predicted=rows - failed, failed=failed, seconds=time.perf_counter() - started)
