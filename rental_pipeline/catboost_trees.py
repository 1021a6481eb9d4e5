"""CatBoost's oblivious trees as a scikit-learn regressor whose fitted state is plain JSON.

CatBoost models are averaged with the histogram boosting models of the default (`boosting`):
their symmetric trees and ordered statistics err differently from scikit-learn's leaf-wise trees,
which is what an average gains from. Stored models are skops files whose types are audited
(`rental_pipeline.model_types`), and skops has no support for CatBoost's types; pickling the
booster would store code. So the fitted state of `CatBoostTrees` is CatBoost's own JSON model
format (numbers and split descriptions, no code) as a string, and the booster is built from it
once, when the model is fitted or loaded.

CatBoost's JSON reader trusts its input: on a crafted file it crashes the process (a split index
past the end, a tree deeper than its leaves) or silently scores garbage (too few leaf values).
`check_model_json` therefore reads the text first and accepts only the shape CatBoost itself
writes for float features: every number finite, borders increasing, each split naming an existing
border of an existing feature, 2**depth leaf values per tree. Only then does CatBoost see it, and
it sees a document rebuilt from the checked values, never the stored text.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

LOSSES = ("RMSE", "MAE")
# Limits on what a stored text may describe, just above what the config allows (`BoostingParams`:
# at most 2,000 trees of depth 10, 254 borders per feature, about 45 MB of text), so that a small
# crafted file cannot make loading take gigabytes or hours: its text is read only when shorter
# than MAX_TEXT_CHARS, and the leaves of all its trees together are at most MAX_LEAVES.
MAX_DEPTH = 16  # CatBoost's own limit for symmetric trees
MAX_LEAVES = 2**21
MAX_BORDERS = 1_024  # per feature
MAX_TEXT_CHARS = 48 << 20
_FLOAT32_MAX = float(np.finfo(np.float32).max)  # CatBoost holds borders as float32
_FLOAT64_MAX = int(np.finfo(np.float64).max)
# (has_nans, nan_value_treatment) as CatBoost writes them: no missing values seen, or missing
# values sent to the smallest (nan_mode Min, its default) or largest side of every split.
_NAN_HANDLING = frozenset({(False, "AsIs"), (True, "AsFalse"), (True, "AsTrue")})
# What a fitted CatBoostTrees holds besides its parameters (`get_params`).
_FITTED_STATE = frozenset({"model_json_", "n_features_in_", "_sklearn_version"})


class UnsafeModelError(ValueError):
    """A CatBoost model text that is not the plain shape CatBoost writes; it was not loaded."""


class CatBoostTrees(RegressorMixin, BaseEstimator):
    """CatBoost symmetric trees on a dense float matrix, one thread, no files written.

    One thread because the averaging (`boosting.AveragedRegressor`) runs its models side by side,
    one per core; CatBoost releases the GIL while it fits and scores, so they truly run at once.
    """

    def __init__(
        self,
        loss: str = "RMSE",
        iterations: int = 500,
        learning_rate: float = 0.12,
        depth: int = 6,
        l2_leaf_reg: float = 3.0,
        border_count: int = 64,
        random_state: int = 42,
    ):
        self.loss = loss
        self.iterations = iterations
        self.learning_rate = learning_rate
        self.depth = depth
        self.l2_leaf_reg = l2_leaf_reg
        self.border_count = border_count
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> CatBoostTrees:
        from catboost import CatBoostRegressor

        if self.loss not in LOSSES:
            raise ValueError(f"unknown CatBoost loss {self.loss!r}: use one of {LOSSES}")
        values = np.asarray(X, dtype=float)
        booster = CatBoostRegressor(
            loss_function=self.loss,
            iterations=self.iterations,
            learning_rate=self.learning_rate,
            depth=self.depth,
            l2_leaf_reg=self.l2_leaf_reg,
            border_count=self.border_count,
            random_seed=self.random_state,
            thread_count=1,
            verbose=0,
            allow_writing_files=False,
        )
        self.__dict__.pop("_booster_", None)  # scored from the new text, not the previous fit's
        booster.fit(values, np.asarray(y, dtype=float))
        with _scratch_file() as path:
            booster.save_model(path, format="json")
            with open(path, encoding="utf-8") as written:
                document = json.load(written)
        # Only what scoring needs: no build information (paths, a random model id) or leaf weights,
        # so the same fit gives the same bytes.
        checked = check_model_json(_scoring_part(document), values.shape[1])
        self.model_json_ = model_text(checked)
        self.n_features_in_ = values.shape[1]
        self._booster_ = (self.model_json_, _catboost_from(checked))
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_json_")
        values = np.asarray(X, dtype=float)
        if values.ndim != 2 or values.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {values.shape[-1]} features; CatBoostTrees was fitted on {self.n_features_in_}")
        return self._booster().predict(values, thread_count=1)

    def _booster(self) -> Any:
        """CatBoost's model of `model_json_`, built when the text was made or loaded; built again
        only if the text was replaced since (the booster is cached with the text it came from)."""
        text, booster = self.__dict__.get("_booster_", (None, None))
        if text is not self.model_json_:
            booster = load_booster(self.model_json_, self.n_features_in_)
            self._booster_ = (self.model_json_, booster)
        return booster

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_booster_", None)  # rebuilt from model_json_: the text is the whole fitted state
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A stored model is checked, and its booster built, as it loads, so a crafted one fails
        when read, not when scored. Its state may hold the parameters and the text only (a stored
        `_booster_` or any other attribute would be used instead of, or beside, the text)."""
        allowed = set(self._get_param_names()) | _FITTED_STATE
        unknown = sorted(set(state) - allowed) if isinstance(state, dict) else ["(not a mapping)"]
        _require(not unknown, f"unexpected attributes {unknown}")
        super().__setstate__(state)
        if "model_json_" in self.__dict__:
            features = self.__dict__.get("n_features_in_")
            _require(type(features) is int and features > 0, "n_features_in_ must be a positive integer")
            self._booster_ = (self.model_json_, _catboost_from(parse_model_text(self.model_json_, features)))


def model_text(document: dict[str, Any]) -> str:
    """The canonical text of a checked model document: same model, same bytes."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False)


def parse_model_text(text: Any, n_features: int) -> dict[str, Any]:
    """The checked model document a stored text describes (`check_model_json`), or
    `UnsafeModelError`; a text longer than `MAX_TEXT_CHARS` is refused before it is parsed."""
    _require(isinstance(text, str), "its text must be a string")
    _require(len(text) <= MAX_TEXT_CHARS, f"its text is {len(text):,} characters, over {MAX_TEXT_CHARS:,}")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UnsafeModelError(f"refusing a CatBoost model: its text is not JSON it can read ({exc})") from exc
    return check_model_json(document, n_features)


def load_booster(text: str, n_features: int) -> Any:
    """A CatBoost model scoring what `text` describes, once `parse_model_text` accepts it."""
    return _catboost_from(parse_model_text(text, n_features))


def _catboost_from(checked: dict[str, Any]) -> Any:
    """CatBoost's model of a document `check_model_json` returned (CatBoost reads JSON models from
    files only)."""
    from catboost import CatBoostRegressor

    booster = CatBoostRegressor()
    with _scratch_file() as path:
        with open(path, "w", encoding="utf-8") as out:
            out.write(model_text(checked))
        booster.load_model(path, format="json")
    return booster


def _scoring_part(document: dict[str, Any]) -> dict[str, Any]:
    trees = [
        {"leaf_values": t.get("leaf_values"), "splits": t.get("splits")} for t in document.get("oblivious_trees", [])
    ]
    return {
        "features_info": document.get("features_info"),
        "oblivious_trees": trees,
        "scale_and_bias": document.get("scale_and_bias"),
    }


def check_model_json(document: Any, n_features: int) -> dict[str, Any]:
    """The model document rebuilt from its checked values, or `UnsafeModelError` saying what is wrong.

    Accepted: exactly the keys `features_info` (`float_features` only), `oblivious_trees` and
    `scale_and_bias`; `n_features` float features in order, each with at most `MAX_BORDERS`
    borders, increasing and finite as float32 values, and the missing-value handling CatBoost
    writes; at least one tree, each of 0 to `MAX_DEPTH` float splits, each naming one of its
    feature's borders by value and by its index among all borders, and 2**depth finite leaf
    values, at most `MAX_LEAVES` in all; a finite scale and one finite bias. Everything else
    CatBoost can write (categorical or text features, multi-dimensional output) is refused: this
    pipeline never fits it.
    """
    _require(
        isinstance(document, dict) and set(document) == {"features_info", "oblivious_trees", "scale_and_bias"},
        "expected exactly features_info, oblivious_trees and scale_and_bias",
    )
    info = document["features_info"]
    _require(isinstance(info, dict) and set(info) == {"float_features"}, "features_info must hold float_features only")
    features = info["float_features"]
    _require(
        isinstance(features, list) and len(features) == n_features,
        f"expected {n_features} float features, found {len(features) if isinstance(features, list) else 'none'}",
    )
    checked_features = [_checked_feature(index, feature) for index, feature in enumerate(features)]
    trees = document["oblivious_trees"]
    _require(isinstance(trees, list) and trees, "oblivious_trees must hold at least one tree")
    borders = _Borders(checked_features)
    checked_trees, leaves = [], 0
    for number, tree in enumerate(trees):
        checked = _checked_tree(number, tree, borders)
        leaves += len(checked["leaf_values"])
        _require(leaves <= MAX_LEAVES, f"its trees hold over {MAX_LEAVES:,} leaves")
        checked_trees.append(checked)
    scale_and_bias = document["scale_and_bias"]
    _require(
        isinstance(scale_and_bias, list)
        and len(scale_and_bias) == 2
        and _finite(scale_and_bias[0])
        and isinstance(scale_and_bias[1], list)
        and len(scale_and_bias[1]) == 1
        and _finite(scale_and_bias[1][0]),
        "scale_and_bias must be [scale, [bias]] with finite numbers",
    )
    return {
        "features_info": {"float_features": checked_features},
        "oblivious_trees": checked_trees,
        "scale_and_bias": [float(scale_and_bias[0]), [float(scale_and_bias[1][0])]],
    }


def _checked_feature(index: int, feature: Any) -> dict[str, Any]:
    where = f"feature {index}"
    _require(isinstance(feature, dict), f"{where} is not an object")
    _require(
        set(feature)
        <= {"borders", "feature_id", "feature_index", "flat_feature_index", "has_nans", "nan_value_treatment"},
        f"{where}: unknown keys",
    )
    borders = feature.get("borders", [])
    _require(
        isinstance(borders, list) and len(borders) <= MAX_BORDERS,
        f"{where}: borders must be a list of at most {MAX_BORDERS}",
    )
    _require(
        all(_finite(b) and abs(b) <= _FLOAT32_MAX for b in borders), f"{where}: borders must be finite float32 numbers"
    )
    as_float32 = np.asarray(borders, dtype=np.float32)
    _require(bool(np.all(np.diff(as_float32) > 0)), f"{where}: borders must increase, as float32 values too")
    _require(
        feature.get("feature_index") == index and feature.get("flat_feature_index") == index,
        f"{where}: its indices must be {index}",
    )
    nan_handling = (feature.get("has_nans"), feature.get("nan_value_treatment"))
    _require(
        nan_handling in _NAN_HANDLING,
        f"{where}: has_nans and nan_value_treatment {nan_handling!r} are not as CatBoost writes them",
    )
    _require(feature.get("feature_id") == "", f"{where}: feature_id must be empty (features are unnamed columns)")
    return {
        "borders": [float(b) for b in borders],
        "feature_id": "",
        "feature_index": index,
        "flat_feature_index": index,
        "has_nans": nan_handling[0],
        "nan_value_treatment": nan_handling[1],
    }


class _Borders:
    """Each feature's borders by value, and where they sit among all features' borders (a split's
    `split_index`), looked up in constant time however many splits a model has."""

    def __init__(self, features: list[dict[str, Any]]):
        self.positions: list[dict[float, int]] = []
        first = 0
        for feature in features:
            self.positions.append({border: first + i for i, border in enumerate(feature["borders"])})
            first += len(feature["borders"])


def _checked_tree(number: int, tree: Any, borders: _Borders) -> dict[str, Any]:
    where = f"tree {number}"
    _require(
        isinstance(tree, dict) and set(tree) <= {"leaf_values", "leaf_weights", "splits"}, f"{where}: unknown keys"
    )
    splits, leaves = tree.get("splits"), tree.get("leaf_values")
    _require(isinstance(splits, list) and len(splits) <= MAX_DEPTH, f"{where}: at most {MAX_DEPTH} splits")
    _require(
        isinstance(leaves, list) and len(leaves) == 2 ** len(splits) and all(_finite(v) for v in leaves),
        f"{where}: expected {2 ** len(splits)} finite leaf values",
    )
    checked_splits = []
    for split in splits:
        _require(
            isinstance(split, dict) and split.get("split_type") == "FloatFeature", f"{where}: only float feature splits"
        )
        feature = split.get("float_feature_index")
        _require(
            type(feature) is int and 0 <= feature < len(borders.positions), f"{where}: split on an unknown feature"
        )
        border = split.get("border")
        index = borders.positions[feature].get(float(border)) if _finite(border) else None
        _require(index is not None, f"{where}: split on a border feature {feature} does not have")
        _require(split.get("split_index") == index, f"{where}: split index {split.get('split_index')!r} is not {index}")
        checked_splits.append(
            {
                "border": float(border),
                "float_feature_index": feature,
                "split_index": index,
                "split_type": "FloatFeature",
            }
        )
    return {"leaf_values": [float(v) for v in leaves], "splits": checked_splits}


def _finite(value: Any) -> bool:
    """A JSON number (not a boolean) that is a finite double; an integer too large for one is not."""
    if type(value) is int:
        return abs(value) <= _FLOAT64_MAX
    return type(value) is float and math.isfinite(value)


def _require(condition: bool, problem: str) -> None:
    if not condition:
        raise UnsafeModelError(f"refusing a CatBoost model: {problem}")


@contextmanager
def _scratch_file() -> Iterator[str]:
    """A private temporary file path (CatBoost reads and writes JSON models only through files)."""
    handle, path = tempfile.mkstemp(suffix=".json", prefix="catboost-")
    os.close(handle)
    try:
        yield path
    finally:
        os.unlink(path)
