"""The default price model: richer features and boosted trees, as one scikit-learn `Pipeline`.

It reads the reference pipeline's input columns plus `host_id` and `neighbourhood`
(`INPUT_COLUMNS`) and predicts the nightly price in dollars. On the reference sample its MAE is
about 14% below the reference forest's; `python -m benchmarks.model_comparison` measures both.

Where the accuracy comes from, roughly in order of weight:

* the listing name read for what it says about the place: bedroom and bathroom counts ("2BR",
  "two bedroom", "1.5 bath") and keyword groups (studio, loft, luxury, shared, outdoor space...),
  plus a cross-fitted text model that turns the whole name into one log-price estimate;
* what the training prices say about the host (per room type) and the neighbourhood, as
  out-of-fold target encodings (`target_encoding`);
* location as distances to Manhattan landmarks and rotated coordinates: street grids and price
  gradients run diagonally to latitude/longitude, which axis-aligned tree splits handle badly;
* boosting on log price, four boosted models averaged: two of scikit-learn's histogram boosting
  with absolute error on different seeds (each split looks at 0.4 of the features, so their
  trees differ), and two of CatBoost (`catboost_trees`: symmetric trees, RMSE and MAE), whose
  errors differ from the others' more than another seed's would. The metric is MAE, so most aim
  at the conditional median rather than the mean, which a few very expensive listings would drag
  up. Scoring walks the histogram models' trees on binned values, one byte each
  (`AveragedRegressor.predict`); CatBoost's symmetric trees score fast on the values.

Everything a prediction needs (keyword tables aside, which are code) is learnt at fit time from
the rows fitted on and stored in the fitted pipeline, so a stored model scores any batch the same
way. Missing values in any input column are accepted at prediction time: the boosted trees route
missing numbers (and missing or unknown categories, encoded as missing) natively, an unknown host
or neighbourhood gets the mean training price, names default to "" and review dates to the
reference's 2010-01-01.
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin, clone
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder
from sklearn.utils.validation import _num_samples, check_is_fitted
from threadpoolctl import threadpool_limits

from rental_pipeline.catboost_trees import LOSSES, CatBoostTrees
from rental_pipeline.features import DATE_COLUMN, FEATURE_COLUMNS, TEXT_COLUMN, ZERO_IMPUTED, DaysBeforeReference
from rental_pipeline.model_params import BoostingParams
from rental_pipeline.name_tokens import Tokens, letter_counts, listing_tokens, name_array, tfidf_matrix
from rental_pipeline.target_encoding import HOST_COLUMNS, NEIGHBOURHOOD_COLUMN, host_price, neighbourhood_price

CATEGORICAL = ["room_type", "neighbourhood_group"]
NUMERIC = ZERO_IMPUTED  # passed through as they are: the trees handle missing values themselves
LOCATION = ["latitude", "longitude"]
# the reference pipeline's inputs, and the two columns the target encodings read
INPUT_COLUMNS = list(FEATURE_COLUMNS) + ["host_id", NEIGHBOURHOOD_COLUMN]
# Rows scored at a time by `AveragedRegressor.predict`, the unit shared out among its threads: a
# `predict` chunk of 100,000 rows splits evenly enough between two, and 16,384 rows of ~40
# one-byte bins (under 1 MiB) stay in a core's cache while every tree walks them.
PREDICT_BLOCK_ROWS = 16_384
_PROBE_ROWS = 64  # rows scored both ways by every `AveragedRegressor.predict` call, as a check


# --- location ------------------------------------------------------------------------------

# (latitude, longitude) of places whose distance says something about a Manhattan-centred market.
LANDMARKS: dict[str, tuple[float, float]] = {
    "times_square": (40.7580, -73.9855),
    "wall_street": (40.7060, -74.0090),
    "central_park": (40.7812, -73.9665),
    "union_square": (40.7359, -73.9911),
    "williamsburg": (40.7140, -73.9610),
}
ROTATIONS_DEGREES: tuple[int, ...] = (15, 30, 45, 60, 75)
_ORIGIN = (40.70, -73.95)
_KM_PER_DEGREE_LATITUDE = 111.0
_KM_PER_DEGREE_LONGITUDE = 111.0 * np.cos(np.radians(_ORIGIN[0]))


def _kilometres(latitude: np.ndarray, longitude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A local flat projection: at city scale its error is far below what matters for prices."""
    east = (longitude - _ORIGIN[1]) * _KM_PER_DEGREE_LONGITUDE
    north = (latitude - _ORIGIN[0]) * _KM_PER_DEGREE_LATITUDE
    return east, north


class LocationFeatures(TransformerMixin, BaseEstimator):
    """Coordinates rotated by several angles, and kilometres to a few landmarks.

    A tree splits on one axis at a time, so the diagonal Manhattan grid and the ring-shaped fall
    of prices away from Midtown need many small steps on raw latitude/longitude; projections
    onto rotated axes and distances make them one or two splits each. Nothing is learnt, and a
    missing coordinate gives missing features, which the boosted trees route on their own.
    """

    def fit(self, X: Any, y: Any = None) -> LocationFeatures:
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        values = np.asarray(X, dtype=float)
        east, north = _kilometres(values[:, 0], values[:, 1])
        columns = []
        for degrees in ROTATIONS_DEGREES:
            angle = np.radians(degrees)
            columns.append(east * np.cos(angle) + north * np.sin(angle))
        for latitude, longitude in LANDMARKS.values():
            landmark_east, landmark_north = _kilometres(np.float64(latitude), np.float64(longitude))
            columns.append(np.hypot(east - landmark_east, north - landmark_north))
        return np.column_stack(columns)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = [f"rotated_{degrees}" for degrees in ROTATIONS_DEGREES]
        names += [f"km_to_{name}" for name in LANDMARKS]
        return np.asarray(names, dtype=object)


# --- the listing name ----------------------------------------------------------------------

# Tokens are `name_tokens.LISTING_TOKEN` over the lowercased name: numbers and runs of letters.
_NUMBER_WORDS = {"one": 1.0, "two": 2.0, "three": 3.0, "four": 4.0, "five": 5.0, "six": 6.0}
_BEDROOM_WORDS = frozenset(
    {"br", "brs", "bd", "bds", "bdr", "bdrm", "bdrms", "bed", "beds", "bedroom", "bedrooms", "bedrm", "bedrms"}
)
_BATH_WORDS = frozenset({"ba", "bath", "baths", "bathroom", "bathrooms", "bth"})
_MAX_BEDROOMS = 10  # "15 bed" is a hostel's bed count or a typo, not an apartment
_MAX_BATHS = 6

# Keyword groups: a word ending in "*" matches any token starting with it, others match exactly.
# Chosen from the words whose presence most moved cross-validated residuals on the training part.
NAME_KEYWORDS: dict[str, tuple[str, ...]] = {
    "studio": ("studio*",),
    "luxury": ("lux*", "elegan*", "designer*", "stunning", "gorgeous", "upscale", "exclusive"),
    "loft": ("loft*",),
    "penthouse": ("penthouse*",),
    "duplex": ("duplex*", "triplex*"),
    "house": ("house*", "townhouse*", "brownstone*", "villa*", "mansion*", "home*"),
    "shared": ("shared", "share", "bunk*", "hostel*", "couch*", "sofa*", "dorm*", "female*", "capsule*"),
    "room": ("room", "rm", "rooms"),
    "small": ("cozy", "cosy", "small*", "tiny", "cute", "little", "simple", "basic", "budget", "cheap*", "affordab*"),
    "spacious": ("spacious", "huge", "large*", "lg", "big*", "sqft", "giant"),
    "outdoor": ("terrace*", "balcon*", "roof*", "patio*", "garden*", "backyard*", "deck*", "yard", "pool*"),
    "family": ("famil*", "group*", "kids"),
    "bath": ("bath*", "ba", "ensuite", "wc"),
    "long_stay": ("sublet*", "furnish*", "month*", "wifi", "student*", "universit*", "college"),
    "renovated": ("renovat*", "new", "modern", "chic", "stylish"),
}


def _keyword_tables() -> tuple[dict[str, frozenset[int]], dict[str, frozenset[int]], tuple[int, ...]]:
    exact: dict[str, set[int]] = {}
    prefix: dict[str, set[int]] = {}
    for group, words in enumerate(NAME_KEYWORDS.values()):
        for word in words:
            table = prefix if word.endswith("*") else exact
            table.setdefault(word.rstrip("*"), set()).add(group)
    lengths = tuple(sorted({len(p) for p in prefix}))
    return {k: frozenset(v) for k, v in exact.items()}, {k: frozenset(v) for k, v in prefix.items()}, lengths


_EXACT, _PREFIX, _PREFIX_LENGTHS = _keyword_tables()


def _keyword_groups(token: str) -> tuple[int, ...]:
    groups = set(_EXACT.get(token, ()))
    for length in _PREFIX_LENGTHS:
        if length > len(token):
            break
        groups |= _PREFIX.get(token[:length], frozenset())
    return tuple(sorted(groups))


def _names(X: Any) -> list[str]:
    """One string per row; a missing name is an empty one."""
    values = pd.Series(np.asarray(X, dtype=object).reshape(-1))
    return values.where(values.notna(), "").astype(str).tolist()


@dataclass(frozen=True)
class _TokenMeanings:
    """What each distinct token of a batch says, indexed like that batch's token dictionary."""

    groups: np.ndarray  # bit g set: the token is in keyword group g
    bedroom: np.ndarray  # a bedroom word ("br", "bedrooms"...)
    bath: np.ndarray
    number: np.ndarray  # its value if it is a number ("2", "1.5", "two"), else NaN

    @classmethod
    def of(cls, tokens: list[str]) -> _TokenMeanings:
        return cls(
            groups=np.array([sum(1 << g for g in _keyword_groups(t)) for t in tokens], dtype="<u4"),
            bedroom=np.array([t in _BEDROOM_WORDS for t in tokens], dtype=bool),
            bath=np.array([t in _BATH_WORDS for t in tokens], dtype=bool),
            number=np.array(
                [float(t) if t[0].isdigit() else _NUMBER_WORDS.get(t, np.nan) for t in tokens], dtype=float
            ),
        )


def _first_count(found: Tokens, words: np.ndarray, says_room: np.ndarray, count: np.ndarray, limit: int) -> np.ndarray:
    """Per name, the first count in (0, limit) said just before a room word (`words`: positions of
    the tokens that follow a number, in order); 0 where none is."""
    stated = np.zeros(len(found.row_offsets) - 1)
    hits = np.flatnonzero(says_room & (count > 0) & (count < limit))
    rows = np.searchsorted(found.row_offsets, words[hits], side="right") - 1
    first = np.ones(len(rows), dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    stated[rows[first]] = count[hits[first]]
    return stated


def _per_row_union(bits: np.ndarray, found: Tokens) -> np.ndarray:
    """Per name, the bitwise or of `bits` over its tokens (0 for a name without any)."""
    union = np.zeros(len(found.row_offsets) - 1, dtype="<u4")
    has_tokens = np.diff(found.row_offsets) > 0
    if has_tokens.any():
        union[has_tokens] = np.bitwise_or.reduceat(bits, found.row_offsets[:-1][has_tokens])
    return union


class ListingNameFeatures(TransformerMixin, BaseEstimator):
    """What a host says about the place: room counts, keyword groups, length and shouting.

    The name is the only description of size and standing in the data. A bag of words misses
    that "2BR", "2 bedroom" and "two-bedroom" are the same fact, and spends many columns on words
    that say little; hand-written groups and a small count parser put the signal in a few columns.
    A name that states no count gets 0, which no stated count can be, so the trees still tell
    "not said" apart (a missing value would do the same, but a column with no value at all in a
    training set, as when no name mentions baths, makes the boosting's binning fail).
    A count is the number token just before a room word, the first such in the name. Tokens are
    found for the whole batch at once (`name_tokens`) and only each distinct token is looked up in
    Python, so a large batch costs array passes rather than a Python loop per name.
    """

    def fit(self, X: Any, y: Any = None) -> ListingNameFeatures:
        self.n_features_in_ = np.asarray(X, dtype=object).reshape(len(X), -1).shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        names = name_array(X)
        n_rows = len(names)
        found = listing_tokens(names)
        encoded = found.tokens.dictionary_encode()
        token = encoded.indices.to_numpy(zero_copy_only=False)
        meanings = _TokenMeanings.of(encoded.dictionary.to_pylist())

        # A count is a number token followed, in the same name, by a room word.
        first_in_name = np.zeros(len(token) + 1, dtype=bool)
        first_in_name[found.row_offsets[:-1]] = True
        numbers = np.flatnonzero(~np.isnan(meanings.number)[token[:-1]] & ~first_in_name[1:-1])
        words, count = numbers + 1, meanings.number[token[numbers]]
        bedrooms = _first_count(found, words, meanings.bedroom[token[words]], count, _MAX_BEDROOMS)
        baths = _first_count(found, words, meanings.bath[token[words]], count, _MAX_BATHS)

        said = _per_row_union(meanings.groups[token], found)  # bit g: a token in keyword group g

        letters, capitals = (total.astype(float) for total in letter_counts(names))
        features = np.empty((n_rows, 4 + len(NAME_KEYWORDS)))
        features[:, 0] = pc.utf8_length(names).to_numpy(zero_copy_only=False)
        np.divide(capitals, letters, out=features[:, 1], where=letters > 0)
        features[letters == 0, 1] = 0.0
        features[:, 2] = bedrooms
        features[:, 3] = baths
        features[:, 4:] = np.unpackbits(said.view(np.uint8).reshape(n_rows, 4), axis=1, bitorder="little")[
            :, : len(NAME_KEYWORDS)
        ]
        return features

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = ["name_length", "name_capital_share", "name_bedrooms", "name_baths"]
        names += [f"name_says_{group}" for group in NAME_KEYWORDS]
        return np.asarray(names, dtype=object)


class CrossFittedTextPrice(TransformerMixin, BaseEstimator):
    """The whole name as one number: a ridge regression of log price on its word TF-IDF.

    Hundreds of rare words each carry a little price information, too thin for tree splits but
    easy for a linear model. Its estimate becomes one feature for the trees. On
    the training rows the estimate is cross-fitted (each row scored by a ridge fitted without
    it, as `sklearn.preprocessing.TargetEncoder` does): otherwise the feature would memorise the
    training prices and the trees would trust it far more than it deserves on new listings. So
    `fit_transform(X, y)` differs from `fit(X, y).transform(X)` on purpose; new rows are scored
    by the ridge fitted on all training rows.
    Fitting uses scikit-learn's `TfidfVectorizer` as it is, so a stored model is an ordinary one;
    scoring builds the same TF-IDF matrix with `name_tokens.tfidf_matrix`, which tokenizes a whole
    batch at once instead of running a regular expression per name.
    """

    def __init__(self, alpha: float = 1.0, min_df: int = 2, n_splits: int = 5, random_state: int = 42):
        self.alpha = alpha
        self.min_df = min_df
        self.n_splits = n_splits
        self.random_state = random_state

    def _vectorizer(self) -> TfidfVectorizer:
        return TfidfVectorizer(min_df=self.min_df, sublinear_tf=True, dtype=np.float64)

    def fit(self, X: Any, y: Any) -> CrossFittedTextPrice:
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        if y is None:
            raise ValueError("CrossFittedTextPrice learns from prices: fit it with y")
        names = _names(X)
        log_price = np.log1p(np.asarray(y, dtype=float))
        self.vectorizer_ = self._vectorizer()
        matrix = self.vectorizer_.fit_transform(names)
        self.ridge_ = Ridge(alpha=self.alpha, solver="lsqr").fit(matrix, log_price)
        out_of_fold = np.empty(len(names))
        folds = KFold(n_splits=self.n_splits, shuffle=True, random_state=self.random_state)
        for fit_rows, scored_rows in folds.split(matrix):
            fold_ridge = Ridge(alpha=self.alpha, solver="lsqr").fit(matrix[fit_rows], log_price[fit_rows])
            out_of_fold[scored_rows] = fold_ridge.predict(matrix[scored_rows])
        self.n_features_in_ = 1
        return out_of_fold.reshape(-1, 1)

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "ridge_")
        return self.ridge_.predict(tfidf_matrix(self.vectorizer_, name_array(X))).reshape(-1, 1)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(["name_text_log_price"], dtype=object)


# --- the regressor -------------------------------------------------------------------------


def _fit_single_threaded(estimator: Any, X: Any, y: Any) -> Any:
    with threadpool_limits(limits=1, user_api="openmp"):
        return estimator.fit(X, y)


def _predict_single_threaded(estimator: Any, X: Any) -> np.ndarray:
    with threadpool_limits(limits=1, user_api="openmp"):
        return estimator.predict(X)


class AveragedRegressor(RegressorMixin, BaseEstimator):
    """The mean of a few regressors, fitted side by side, each on one OpenMP thread.

    `VotingRegressor` computes the same average, but either fits the members one after the other
    or in separate processes. Here they run in threads and each member is held to one OpenMP
    thread: the histogram boosting's OpenMP loops synchronise thousands of times per fit, and
    when the machine's cores are also busy with other work those barriers wait for descheduled
    threads (on a busy 2-core machine a fit that takes under 2 s on one thread took 15 to 95 s
    on two). One thread per member, members in parallel, keeps the cores busy without
    oversubscribing them.
    """

    def __init__(self, estimators: list[tuple[str, Any]], n_jobs: int = 2):
        self.estimators = estimators
        self.n_jobs = n_jobs

    def fit(self, X: Any, y: Any) -> AveragedRegressor:
        members = [clone(estimator) for _, estimator in self.estimators]
        workers = max(1, min(int(self.n_jobs), len(members)))
        if workers == 1:
            self.estimators_ = [_fit_single_threaded(member, X, y) for member in members]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                self.estimators_ = list(pool.map(lambda member: _fit_single_threaded(member, X, y), members))
        self.n_features_in_ = self.estimators_[0].n_features_in_
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The members' mean, scored in blocks of rows (`PREDICT_BLOCK_ROWS`) shared out among
        `n_jobs` threads, each on one OpenMP thread and scoring every member, so any number of
        members keeps the cores evenly busy.

        Where the histogram boosting members (on their own or inside a
        `TransformedTargetRegressor`) were fitted on the same bin edges, as the default model's
        are (same rows, same `max_bins`), each block is binned once and their trees walk the bins
        (one byte per value) instead of the floats (eight), while any other member (CatBoost)
        scores the block's values: scikit-learn's own binned prediction, which it uses on its
        training data while fitting. A split sends a value left when it is at most the edge of
        its bin threshold, and a value's bin is the first edge it is at most, so both walks take
        the same branch at every node (missing values included) and the numbers are those of each
        member's `predict` on all rows (`predict_whole`); the bytes stay in the core's cache while
        hundreds of trees walk them, which makes scoring about a third cheaper. Anything else (a
        DataFrame, categorical splits, histogram members with different bins) is scored by each
        member's own `predict` on all rows, members side by side (`predict_whole`), and so is
        every row if the binned walk disagrees with the members' own `predict` on the first rows
        (`_PROBE_ROWS`; it cannot, unless a scikit-learn release changes its binned prediction,
        and then this stays correct, only slower).
        """
        check_is_fitted(self, "estimators_")
        binned = _binned_views(self.estimators_, X)
        if binned is None or not _same_on_probe(self.estimators_, binned, X):
            return self.predict_whole(X)
        bin_mapper, views = binned
        n_rows = _num_samples(X)
        starts = list(range(0, n_rows, PREDICT_BLOCK_ROWS)) or [0]
        workers = max(1, min(int(self.n_jobs), len(starts)))
        out = np.empty(n_rows)

        def score(first: int) -> None:
            with threadpool_limits(limits=1, user_api="openmp"):
                for start in starts[first::workers]:
                    rows = slice(start, min(start + PREDICT_BLOCK_ROWS, n_rows))
                    block = np.ascontiguousarray(bin_mapper.transform(X[rows]))
                    out[rows] = np.mean(
                        [member.predict(X[rows]) if view is None else view.predict(block)
                         for member, view in zip(self.estimators_, views)],
                        axis=0,
                    )

        if workers == 1:
            score(0)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(score, range(workers)))
        return out

    def predict_whole(self, X: Any) -> np.ndarray:
        """The straightforward computation `predict` matches: each member's own `predict` on all
        rows at once (members side by side, each on one OpenMP thread), then the mean."""
        check_is_fitted(self, "estimators_")
        workers = max(1, min(int(self.n_jobs), len(self.estimators_)))
        if workers == 1:
            predictions = [_predict_single_threaded(member, X) for member in self.estimators_]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                predictions = list(pool.map(lambda member: _predict_single_threaded(member, X), self.estimators_))
        return np.mean(predictions, axis=0)


def _same_on_probe(members: list[Any], binned: tuple[Any, list[Any | None]], X: np.ndarray) -> bool:
    """Whether each member scored on bins scores the first rows of X the same as on its own."""
    bin_mapper, views = binned
    probe = X[:_PROBE_ROWS]
    if not len(probe):
        return True  # nothing to compare: the members refuse an empty batch either way
    with threadpool_limits(limits=1, user_api="openmp"):
        on_bins = np.ascontiguousarray(bin_mapper.transform(probe))
        return all(
            np.array_equal(view.predict(on_bins), member.predict(probe))
            for view, member in zip(views, members)
            if view is not None
        )


def _histogram_trees(member: Any) -> HistGradientBoostingRegressor | None:
    """The member's fitted histogram boosting model (on its own or inside a
    `TransformedTargetRegressor`) where it can be scored on bins, else None."""
    trees = member.regressor_ if isinstance(member, TransformedTargetRegressor) else member
    if type(trees) is HistGradientBoostingRegressor and hasattr(trees, "_bin_mapper") and not hasattr(
        trees, "feature_names_in_"
    ):
        return trees
    return None


def _binned_views(members: list[Any], X: Any) -> tuple[Any, list[Any | None]] | None:
    """(the shared bin mapper, each histogram boosting member as a copy that reads binned rows and
    None for any other member), or None where no member reads bins or they cannot share them.
    The copies are shallow (the trees are the fitted ones) and live for one `predict` call; they
    only carry scikit-learn's flag that says the input is binned."""
    if not isinstance(X, np.ndarray):
        return None
    found = [_histogram_trees(member) for member in members]
    boosted = [trees for trees in found if trees is not None]
    if not boosted:
        return None
    mapper = boosted[0]._bin_mapper
    for other in (b._bin_mapper for b in boosted):
        if (
            getattr(other, "is_categorical_", None) is None
            or other.is_categorical_.any()
            or other.missing_values_bin_idx_ != mapper.missing_values_bin_idx_
            or len(other.bin_thresholds_) != len(mapper.bin_thresholds_)
            or not all(np.array_equal(a, b) for a, b in zip(other.bin_thresholds_, mapper.bin_thresholds_))
        ):
            return None
    views: list[Any | None] = []
    for member, trees in zip(members, found):
        if trees is None:
            views.append(None)  # scored on the floats
            continue
        on_bins = copy.copy(trees)
        on_bins._in_fit = True  # HistGradientBoostingRegressor._raw_predict: X is binned
        if isinstance(member, TransformedTargetRegressor):
            view = copy.copy(member)
            view.regressor_ = on_bins
        else:
            view = on_bins
        views.append(view)
    return mapper, views


def _boosted_trees(params: BoostingParams, loss: str, random_state: int | None = None) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(
        loss=loss,
        learning_rate=params.learning_rate,
        max_iter=params.max_iter,
        max_leaf_nodes=params.max_leaf_nodes,
        max_depth=params.max_depth,
        min_samples_leaf=params.min_samples_leaf,
        l2_regularization=params.l2_regularization,
        max_features=params.max_features,
        max_bins=params.max_bins,
        # The category codes are plain numbers to the trees. Native categorical splits were no
        # better here (room types are already in price order; boroughs are also coordinates) and
        # would store a `functools.partial` in the model, which the model store refuses to load.
        categorical_features=None,
        early_stopping=False,  # every training row fits the model; the iteration count is fixed
        random_state=params.random_state if random_state is None else random_state,
    )


def averaged_models(params: BoostingParams) -> list[tuple[str, Any]]:
    """(name, unfitted model of log price) of each averaged model: the histogram boosting ones
    (squared error, then absolute error: the metric is MAE), then the CatBoost ones (RMSE and MAE
    alternating). Models of one kind and loss differ by seed, so their feature subsets
    (`max_features`) or CatBoost's sampling differ."""
    models: list[tuple[str, Any]] = []
    histogram = (("squared_error", params.squared_error_models), ("absolute_error", params.absolute_error_models))
    for loss, count in histogram:
        for seed in range(count):
            trees = _boosted_trees(params, loss, params.random_state + seed)
            models.append((f"log_price_{loss}{'' if seed == 0 else f'_{seed + 1}'}", trees))
    for number in range(params.catboost_models):
        loss, seed = LOSSES[number % len(LOSSES)], number // len(LOSSES)
        trees = CatBoostTrees(
            loss=loss, iterations=params.catboost_iterations, learning_rate=params.catboost_learning_rate,
            depth=params.catboost_depth, l2_leaf_reg=params.catboost_l2_leaf_reg,
            border_count=params.catboost_border_count, random_state=params.random_state + seed,
        )
        models.append((f"log_price_catboost_{loss.lower()}{'' if seed == 0 else f'_{seed + 1}'}", trees))
    return [
        (name, TransformedTargetRegressor(regressor=trees, func=np.log1p, inverse_func=np.expm1))
        for name, trees in models
    ]


def build_boosted_preprocessor(params: BoostingParams = BoostingParams()) -> ColumnTransformer:
    """Raw listing columns in, a dense float matrix out, categorical codes first."""
    categories = OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan
    )
    text_price = CrossFittedTextPrice(
        alpha=params.text_alpha, min_df=params.text_min_df, n_splits=params.text_folds,
        random_state=params.random_state,
    )
    return ColumnTransformer(
        transformers=[
            ("categories", categories, CATEGORICAL),
            ("numbers", "passthrough", NUMERIC),
            ("review_date", DaysBeforeReference(), [DATE_COLUMN]),
            ("location", LocationFeatures(), LOCATION),
            ("name_features", ListingNameFeatures(), [TEXT_COLUMN]),
            ("name_text_price", text_price, [TEXT_COLUMN]),
            ("host_price", host_price(params.random_state), HOST_COLUMNS),
            ("neighbourhood_price", neighbourhood_price(params.random_state), [NEIGHBOURHOOD_COLUMN]),
        ],
        remainder="drop",
        sparse_threshold=0.0,
        verbose_feature_names_out=False,
    )


def build_boosted_pipeline(params: BoostingParams = BoostingParams()) -> Pipeline:
    """Preprocessing plus the averaged models of log price (`averaged_models`), unfitted; fit on
    `INPUT_COLUMNS` and price. Averaging prices (rather than log prices) scored the same on
    validation."""
    regressor = AveragedRegressor(estimators=averaged_models(params), n_jobs=params.n_jobs)
    return Pipeline(steps=[("preprocessor", build_boosted_preprocessor(params)), ("regressor", regressor)])
