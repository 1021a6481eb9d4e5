"""What the training prices say about a listing's host and neighbourhood, learnt out of fold.

A host's other listings are the best single hint of how a new one is priced (a host renting
rooms at $60 rarely lists one at $300), and so is the neighbourhood once room type is known.
Neither fits the trees as it is: tens of thousands of hosts and a couple of hundred
neighbourhoods are far too many categories to split on. Target encoding turns each into one
number, the smoothed mean log price of the training listings sharing it.

Done naively the encoding leaks: a host with one listing would be encoded by that listing's own
price and the trees would learn to trust the column far beyond what it says about new listings.
scikit-learn's `TargetEncoder` avoids this by cross-fitting in `fit_transform` (each training row
encoded from the other folds' rows), while `transform` encodes new rows from every training row;
it is used here as it is, on log price. The encodings live inside the fitted pipeline, are learnt
from the rows the pipeline is fitted on and nothing else, and a new listing needs only its own row
to be scored: an unknown host or neighbourhood gets the mean of all training prices, and a missing
one is a category of its own (scikit-learn's rule), encoded out of fold from the training listings
that lacked it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import TargetEncoder
from sklearn.utils.validation import check_is_fitted

HOST_COLUMNS = ["host_id", "room_type"]
NEIGHBOURHOOD_COLUMN = "neighbourhood"
_EXACT_KEY_LIMIT = float(2**53)  # every whole number up to this is exact in a float


class LogPriceTargetEncoder(TargetEncoder):
    """scikit-learn's `TargetEncoder`, fitted on log price instead of price.

    The trees fit log price (boosting.build_boosted_pipeline), and a mean of log prices is not
    dragged up by the odd very expensive listing the way a mean of prices is. Only the target
    given to `fit`/`fit_transform` changes; the fitted state is `TargetEncoder`'s own.
    """

    def fit(self, X: Any, y: Any) -> LogPriceTargetEncoder:
        return super().fit(X, np.log1p(np.asarray(y, dtype=float)))

    def fit_transform(self, X: Any, y: Any, **params: Any) -> np.ndarray:
        return super().fit_transform(X, np.log1p(np.asarray(y, dtype=float)), **params)


class HostRoomKey(TransformerMixin, BaseEstimator):
    """`host_id` and `room_type` as one number: a host's private rooms and whole flats are priced
    apart, so they are encoded apart.

    The key is ``host_id * (known room types + 1) + code``, code 0 for a room type not seen in
    training (or missing). A number, not a string, because numeric categories are looked up with
    array searches when a million listings are scored, and take a few bytes each in the stored
    model. A host id that is missing or not a whole number gives a missing key, which the encoder
    encodes as the category of listings without a host. Ids are whole numbers far below
    2**53 / (room types + 1), so the key is exact in a float; an id too large for that gets a
    missing key too.
    """

    def fit(self, X: Any, y: Any = None) -> HostRoomKey:
        rooms = _column(X, 1).dropna().astype(str)
        self.room_types_ = np.asarray(sorted(rooms.unique()), dtype=object)
        self.n_features_in_ = 2
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "room_types_")
        host = _numbers(_column(X, 0))
        rooms = _column(X, 1)
        code = pd.Index(self.room_types_).get_indexer(rooms.astype(object).where(rooms.notna(), None)) + 1
        with np.errstate(invalid="ignore", over="ignore"):
            key = host * (len(self.room_types_) + 1) + code
        key[~np.isfinite(host) | (host != np.floor(host))] = np.nan
        # A key past 2**53 is not exact in a float (two hosts, or two room types, would share it)
        # and one past the float range is infinite, which the encoder refuses for the whole batch.
        key[~(np.abs(key) <= _EXACT_KEY_LIMIT)] = np.nan
        return key.reshape(-1, 1)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(["host_room_log_price"], dtype=object)


def _column(X: Any, position: int) -> pd.Series:
    """One input column as it came (a text column read by `predict` stays Arrow-backed, which
    `pd.to_numeric` parses several times faster than Python strings)."""
    if isinstance(X, pd.DataFrame):
        return X.iloc[:, position].reset_index(drop=True)
    return pd.Series(np.asarray(X, dtype=object)[:, position])


def _numbers(values: pd.Series) -> np.ndarray:
    """`pd.to_numeric(values, errors="coerce")` as floats; a column of Arrow text that is all
    numbers (what `predict` reads) is cast by Arrow, several times faster."""
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        array = pa.array(values.array)
        try:
            return pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # some value is not a number: pandas decides, as for any other column
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def out_of_fold_encoder(random_state: int, n_splits: int = 5) -> LogPriceTargetEncoder:
    """Smoothed (empirical Bayes, `smooth="auto"`) and cross-fitted on shuffled folds, seeded so
    that two fits give the same model."""
    return LogPriceTargetEncoder(
        target_type="continuous",
        smooth="auto",
        cv=KFold(n_splits=n_splits, shuffle=True, random_state=random_state),
    )


def host_price(random_state: int) -> Pipeline:
    """`host_id`, `room_type` in; the out-of-fold mean log price of that host's listings of that type out."""
    return Pipeline([("key", HostRoomKey()), ("encoder", out_of_fold_encoder(random_state))])


def neighbourhood_price(random_state: int) -> LogPriceTargetEncoder:
    """`neighbourhood` in; the out-of-fold mean log price of its training listings out."""
    return out_of_fold_encoder(random_state)
